"""HTTP request and response bodies (msgspec Structs). JSON field names are snake_case everywhere, like
the event envelope and the problem details, so that one naming rule holds for every document Lockgate
emits."""
