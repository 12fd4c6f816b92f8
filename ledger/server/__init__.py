"""A storage server process: the one package that knows every layer.

It wires the bank over the node driver over the Paxos core and the store, and holds
the gRPC servicers (public Ledger API, peer Replica API, Admin) that decode a call,
hand it to the layer that does the work and encode the answer, with no logic of
their own.
"""
