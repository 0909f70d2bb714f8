"""The Ledger stack as a Pulumi program: one module per concern, assembled by `stack.build()`."""
