"""One extractor module per source family: each turns the files of a package into documents."""
