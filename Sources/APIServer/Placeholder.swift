// Placeholder: module APIServer arrives with its own issue (see `issues`).
