"""Developer tools that ship with the repository, not with the package (``make corpus``)."""
