"""Store URLs of the private test servers, for code that is configured by environment."""
