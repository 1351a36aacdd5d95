"""Routers, one module per resource; each route's name is its Lambda operation."""
