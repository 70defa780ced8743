"""Assets, one module per stage, in the order data flows."""
