"""The HTTP face of Turnwall: one FastAPI factory shared by every Lambda function and
by `turnwall serve`."""
