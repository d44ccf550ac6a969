"""The bucket and its notification: what MinIO must announce, and the code that applies it."""
