package loadtest_test

import "github.com/google/go-cmp/cmp/cmpopts"

// cmpEmpty treats nil and empty slices alike: the data file cannot tell them
// apart.
var cmpEmpty = cmpopts.EquateEmpty()
