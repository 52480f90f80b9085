"""The local sandbox: runs a synthesized CDK cloud assembly on one machine."""
