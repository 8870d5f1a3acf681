"""The frontends: a trained model in some framework -> the IR. Today: FLAMO."""
