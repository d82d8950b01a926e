"""Songbook's GraphQL layer: the Starlette app, the schema, its resolvers and loaders."""
