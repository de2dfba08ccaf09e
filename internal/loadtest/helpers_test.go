package loadtest_test

import (
	"encoding/json"

	"github.com/google/go-cmp/cmp/cmpopts"
)

var jsonUnmarshal = json.Unmarshal

// cmpEmpty treats nil and empty slices alike: the data file cannot tell them
// apart.
var cmpEmpty = cmpopts.EquateEmpty()
