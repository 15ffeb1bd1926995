// Placeholder: module Client arrives with its own issue (see `issues`).
