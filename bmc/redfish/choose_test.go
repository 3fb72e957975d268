package redfish

import (
	"errors"
	"testing"

	"github.com/rmm-project/rmm/bmc"
)

func TestChooseSystem(t *testing.T) {
	t.Parallel()
	c := func(uri string, reset bool) candidate { return candidate{uri: uri, reset: reset} }
	tests := []struct {
		name    string
		cands   []candidate
		managed map[string]bool
		want    string
	}{
		{"one-with-reset", []candidate{c("/redfish/v1/Systems/1", true)}, nil, "/redfish/v1/Systems/1"},
		{"one-without-reset", []candidate{c("/redfish/v1/Systems/1", false)}, nil, "/redfish/v1/Systems/1"},
		{"only-one-resettable", []candidate{c("/redfish/v1/Systems/BMC", false), c("/redfish/v1/Systems/1", true)}, nil, "/redfish/v1/Systems/1"},
		{"manager-names-one", []candidate{c("/redfish/v1/Systems/node1", true), c("/redfish/v1/Systems/node2", true)},
			map[string]bool{"/redfish/v1/Systems/node2": true}, "/redfish/v1/Systems/node2"},
		{"manager-link-with-slash", []candidate{c("/redfish/v1/Systems/a/", true), c("/redfish/v1/Systems/b", true)},
			map[string]bool{"/redfish/v1/Systems/a": true}, "/redfish/v1/Systems/a/"},
		{"none-resettable-manager-names-one", []candidate{c("/redfish/v1/Systems/a", false), c("/redfish/v1/Systems/b", false)},
			map[string]bool{"/redfish/v1/Systems/b": true}, "/redfish/v1/Systems/b"},
		{"ambiguous", []candidate{c("/redfish/v1/Systems/node1", true), c("/redfish/v1/Systems/node2", true)},
			map[string]bool{"/redfish/v1/Systems/node1": true, "/redfish/v1/Systems/node2": true}, ""},
		{"ambiguous-no-managers", []candidate{c("/redfish/v1/Systems/node1", true), c("/redfish/v1/Systems/node2", true)}, nil, ""},
		{"empty", nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseSystem(tc.cands, tc.managed)
			if tc.want == "" {
				if !errors.Is(err, bmc.ErrUnsupported) {
					t.Fatalf("got %q, %v; want an ErrUnsupported error", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if needManagers(tc.cands) != (tc.managed != nil) {
				t.Errorf("needManagers = %v", needManagers(tc.cands))
			}
		})
	}
}
