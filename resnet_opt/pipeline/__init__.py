"""One module per stage; each stage is a plain function that reads files and writes an artifact."""
