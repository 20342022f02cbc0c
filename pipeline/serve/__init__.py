"""L5 serve: the graph load as a stage (added with the pipeline's own L3/L4 tables)."""
