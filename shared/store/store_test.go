package store

import "testing"

func TestPutOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		o  PutOptions
		ok bool
	}{
		{PutOptions{}, true},
		{PutOptions{IfAbsent: true}, true},
		{PutOptions{IfMatch: `"e"`}, true},
		{PutOptions{IfAbsent: true, IfMatch: `"e"`}, false},
	} {
		if err := tc.o.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v.Check() = %v, want ok %v", tc.o, err, tc.ok)
		}
	}
}
