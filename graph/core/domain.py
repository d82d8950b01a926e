"""What a domain contributes to the schema; graph/schema.py composes them."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain's root fields (Strawberry types whose fields join Query, Mutation and
    Subscription) and the types it adds to the schema (its Relay nodes among them)."""

    queries: tuple[type, ...] = ()
    mutations: tuple[type, ...] = ()
    subscriptions: tuple[type, ...] = ()
    types: tuple[type, ...] = ()
