"""A Paxos node: the driver that runs the pure core against a store and the network.

`driver` is the only caller of the core (persist -> send -> apply, one turn at a
time); `transport` carries peer messages over long-lived gRPC streams, encoded by
`peer_codec`; `consensus` is the interface the bank uses (and the state machine it
supplies); `cluster` is the membership every node derives its ballot index from.
"""
