// Placeholder: module RPC arrives with its own issue (see `issues`).
