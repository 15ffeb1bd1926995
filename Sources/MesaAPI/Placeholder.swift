// Placeholder: module MesaAPI arrives with its own issue (see `issues`).
