"""Root resolvers by domain; ``cxgraph.api.schema`` assembles them into Query and Mutation."""
