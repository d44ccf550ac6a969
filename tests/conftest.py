"""Makes tests/ importable, so test modules share helpers such as the image corpus."""
