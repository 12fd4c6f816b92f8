"""A storage server: the Paxos core driven over gRPC and durable storage."""
