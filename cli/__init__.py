"""The program on top: the `imgpipe` command, the local stack it starts, and the upload client."""
