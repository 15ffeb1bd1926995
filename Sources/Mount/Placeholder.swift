// Placeholder: module Mount arrives with its own issue (see `issues`).
