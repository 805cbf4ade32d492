package steamfixture

// NextPort lets a test make two processes walk the same ports.
var NextPort = nextPort
