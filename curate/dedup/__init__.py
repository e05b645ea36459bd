"""Near-duplicate detection: shingles, MinHash band hashes (a scorer's features), and clusters over them."""
