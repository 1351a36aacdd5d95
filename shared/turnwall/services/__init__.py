"""The service layer: session rules and scan orchestration over a store, no HTTP."""
