"""Durable state of a node: what the Paxos core asks to persist, behind one Protocol."""
