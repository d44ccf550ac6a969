"""imgpipe: what the API, the relay and the workers share."""
