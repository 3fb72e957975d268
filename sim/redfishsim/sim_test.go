package redfishsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmm-project/rmm/sim/machine"
	redfishtrees "github.com/rmm-project/rmm/testdata/redfish"
)

// known holds what the tests know about each vendor's tree.
var known = map[string]struct {
	system     string
	disallowed string // a standard reset type the tree does not offer
	sel        string
	captured   int
	otherLog   string // another log service with a ClearLog action
}{
	"dell":       {"/redfish/v1/Systems/System.Embedded.1", "ForceOn", "/redfish/v1/Managers/iDRAC.Embedded.1/LogServices/Sel", 5, ""},
	"hpe":        {"/redfish/v1/Systems/1", "PowerCycle", "/redfish/v1/Systems/1/LogServices/IML", 5, "/redfish/v1/Managers/1/LogServices/IEL"},
	"lenovo":     {"/redfish/v1/Systems/1", "PowerCycle", "/redfish/v1/Systems/1/LogServices/PlatformLog", 5, "/redfish/v1/Systems/1/LogServices/AuditLog"},
	"supermicro": {"/redfish/v1/Systems/1", "PushPowerButton", "/redfish/v1/Systems/1/LogServices/Log1", 82, "/redfish/v1/Managers/1/LogServices/Log1"},
	"dmtf":       {"/redfish/v1/Systems/437XR1138R2", "PowerCycle", "/redfish/v1/Systems/437XR1138R2/LogServices/Log1", 2, "/redfish/v1/Managers/BMC/LogServices/Log"},
}

func captured(t *testing.T, vendor, uri string) []byte {
	t.Helper()
	tree, _ := redfishtrees.Tree(vendor)
	b, err := fs.ReadFile(tree, strings.TrimPrefix(uri, "/")+"/index.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServesTreeAndRequiresAuth(t *testing.T) {
	t.Parallel()
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := start(t, v)
			r := f.c.do(t, "GET", "/redfish", nil)
			if r.status != 200 || r.json(t)["v1"] != "/redfish/v1/" {
				t.Fatalf("/redfish: %d %s", r.status, r.body)
			}
			r = f.c.do(t, "GET", "/redfish/v1/", nil)
			if r.status != 200 || !bytes.Equal(r.body, captured(t, v, "/redfish/v1")) {
				t.Fatalf("service root not served as captured: %d", r.status)
			}
			r = f.c.do(t, "GET", "/redfish/v1/Chassis", nil)
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("unauthenticated GET: %d", r.status)
			}
			if _, ok := r.json(t)["error"]; !ok {
				t.Fatalf("401 without a Redfish error body: %s", r.body)
			}
			f.c.basic = true
			r = f.c.do(t, "GET", "/redfish/v1/Chassis", nil)
			if r.status != 200 || !bytes.Equal(r.body, captured(t, v, "/redfish/v1/Chassis")) {
				t.Fatalf("Basic auth GET: %d", r.status)
			}
			f.c.basic = false
			f.c.token = "not-a-token"
			if r := f.c.do(t, "GET", "/redfish/v1/Chassis", nil); r.status != http.StatusUnauthorized {
				t.Fatalf("bad token: %d", r.status)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := start(t, v)
			r := f.c.do(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": testUser, "Password": "wrong"})
			if r.status != http.StatusUnauthorized || f.srv.OpenSessions() != 0 {
				t.Fatalf("wrong password: %d, %d sessions", r.status, f.srv.OpenSessions())
			}
			if r := f.c.do(t, "POST", "/redfish/v1/SessionService/Sessions", nil); r.status != http.StatusBadRequest {
				t.Fatalf("empty login body: %d", r.status)
			}
			r = f.c.login(t)
			loc := r.header.Get("Location")
			if v == "hpe" {
				if want := "https://" + f.srv.Addr().String() + "/redfish/v1/SessionService/Sessions/admin"; !strings.HasPrefix(loc, want) || !strings.HasSuffix(loc, "/") {
					t.Fatalf("iLO Location %q, want an absolute URL on the BMC's own address with a trailing slash", loc)
				}
			} else if !strings.HasPrefix(loc, "/redfish/v1/SessionService/Sessions/") {
				t.Fatalf("Location %q", loc)
			}
			body := r.json(t)
			if body["@odata.id"] != strings.TrimSuffix(sessionPath(loc), "/") || body["UserName"] != testUser {
				t.Fatalf("session body %s", r.body)
			}
			if pw, ok := body["Password"]; ok && pw != nil {
				t.Fatalf("session body shows a password: %v", pw)
			}
			if f.srv.OpenSessions() != 1 {
				t.Fatalf("%d sessions", f.srv.OpenSessions())
			}
			coll := f.c.do(t, "GET", "/redfish/v1/SessionService/Sessions", nil).json(t)
			if n, _ := coll["Members@odata.count"].(float64); n != 1 {
				t.Fatalf("session collection: %v", coll)
			}
			if r := f.c.do(t, "GET", sessionPath(loc), nil); r.status != 200 {
				t.Fatalf("GET own session: %d", r.status)
			}
			if r := f.c.do(t, "DELETE", sessionPath(loc), nil); r.status >= 300 {
				t.Fatalf("logout: %d %s", r.status, r.body)
			}
			if f.srv.OpenSessions() != 0 {
				t.Fatal("session still open after logout")
			}
			if r := f.c.do(t, "GET", "/redfish/v1/Systems", nil); r.status != http.StatusUnauthorized {
				t.Fatalf("token still valid after logout: %d", r.status)
			}
			for _, req := range f.srv.Requests() {
				if strings.Contains(req.Body, testPass) || strings.Contains(req.Body, `"wrong"`) {
					t.Fatalf("request log shows a password: %+v", req)
				}
			}
		})
	}
}

func TestPathVariants(t *testing.T) {
	t.Parallel()
	f := start(t, "supermicro")
	f.c.basic = true
	want := captured(t, "supermicro", "/redfish/v1/Systems/1/LogServices/Log1")
	for _, p := range []string{
		"/redfish/v1/Systems/1/LogServices/Log1",
		"/redfish/v1/Systems/1/LogServices/Log1/",
		"/redfish/v1/Systems/1/LogServices/Log1?$expand=.",
		"/redfish/v1/Systems/1/LogServices/Log1//",
	} {
		if r := f.c.do(t, "GET", p, nil); r.status != 200 || !bytes.Equal(r.body, want) {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	// A member with no file of its own comes from the collection's inline copy.
	r := f.c.do(t, "GET", "/redfish/v1/Managers/1/LogServices/Log1/Entries/300", nil)
	if r.status != 200 || r.json(t)["Id"] != "300" {
		t.Fatalf("inline member: %d %s", r.status, r.body)
	}
	if r := f.c.do(t, "GET", "/redfish/v1/Systems/1/Bios", nil); r.status != 404 {
		t.Fatalf("left-out resource: %d", r.status)
	}

	// iLO answers lower-case paths; the others do not.
	h := start(t, "hpe")
	h.c.basic = true
	if r := h.c.do(t, "GET", "/redfish/v1/systems/1/logservices/iml", nil); r.status != 200 || r.json(t)["Id"] != "IML" {
		t.Fatalf("iLO lower case: %d", r.status)
	}
	if r := f.c.do(t, "GET", "/redfish/v1/systems/1", nil); r.status != 404 {
		t.Fatalf("Supermicro lower case: %d", r.status)
	}
}

func TestSystemReflectsMachine(t *testing.T) {
	t.Parallel()
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := start(t, v)
			f.c.login(t)
			sys := known[v].system
			got := f.c.do(t, "GET", sys, nil).json(t)
			if got["PowerState"] != "On" || got["UUID"] != f.m.ID.UUID || got["SerialNumber"] != f.m.ID.Serial {
				t.Fatalf("system: PowerState %v UUID %v Serial %v", got["PowerState"], got["UUID"], got["SerialNumber"])
			}
			f.m.SetPower(false)
			if got := f.c.do(t, "GET", sys, nil).json(t); got["PowerState"] != "Off" {
				t.Fatalf("PowerState %v after the machine went off", got["PowerState"])
			}
			// The rest of the resource is the capture's.
			var want map[string]any
			_ = json.Unmarshal(captured(t, v, sys), &want)
			if got["Model"] != want["Model"] || len(got) != len(want) {
				t.Fatalf("overlay changed more than it should: %d members, want %d", len(got), len(want))
			}
		})
	}
}

func TestReset(t *testing.T) {
	t.Parallel()
	type step struct {
		resetType string
		startOn   bool
		status    int
		wantOn    bool
		action    string // machine action recorded, "" for none
	}
	common := []step{
		{"ForceOff", true, 0, false, "off"},
		{"On", false, 0, true, "on"},
		{"GracefulShutdown", true, 0, false, "soft"},
		{"ForceRestart", true, 0, true, "reset"},
		{"ForceRestart", false, http.StatusConflict, false, "reset"},
		{"GracefulRestart", true, 0, true, "reset"},
		{"Nmi", true, 0, true, ""},
	}
	for _, v := range vendorNames {
		steps := append([]step(nil), common...)
		steps = append(steps, step{known[v].disallowed, true, http.StatusBadRequest, true, ""})
		switch v {
		case "dell", "supermicro":
			steps = append(steps, step{"PowerCycle", true, 0, true, "cycle"})
		}
		switch v {
		case "dell", "hpe", "dmtf":
			steps = append(steps, step{"PushPowerButton", true, 0, false, "soft"}, step{"PushPowerButton", false, 0, true, "on"})
		}
		for _, st := range steps {
			name := v + "/" + st.resetType + map[bool]string{true: "-on", false: "-off"}[st.startOn]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := start(t, v)
				f.m.SetPower(st.startOn)
				before := len(f.m.Actions())
				f.c.login(t)
				target := known[v].system + "/Actions/ComputerSystem.Reset"
				r := f.c.do(t, "POST", target, map[string]string{"ResetType": st.resetType}, "If-Match", `W/"whatever"`)
				switch {
				case st.status != 0 && r.status != st.status:
					t.Fatalf("status %d, want %d: %s", r.status, st.status, r.body)
				case st.status == 0 && (r.status < 200 || r.status > 299):
					t.Fatalf("status %d: %s", r.status, r.body)
				case st.status >= 400:
					if _, ok := r.json(t)["error"]; !ok {
						t.Fatalf("no Redfish error body: %s", r.body)
					}
				}
				if v == "hpe" && st.status == 0 && !strings.Contains(string(r.body), "Base.1.4.Success") {
					t.Errorf("iLO success body %s", r.body)
				}
				// A power cycle comes back on after the machine's delay.
				for i := 0; i < 300 && f.m.PowerOn() != st.wantOn; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				if f.m.PowerOn() != st.wantOn {
					t.Errorf("power on = %v, want %v", f.m.PowerOn(), st.wantOn)
				}
				var want []string
				if st.action != "" {
					want = []string{st.action}
				}
				if got := f.m.Actions()[before:]; !slices.Equal(got, want) {
					t.Errorf("machine actions %v, want %v", got, want)
				}
				if st.resetType == "Nmi" && len(f.m.SEL()) == 0 {
					t.Error("an NMI did not panic the host")
				}
				if got := f.srv.ResetTypes(); !slices.Equal(got, []string{st.resetType}) {
					t.Errorf("ResetTypes() = %v", got)
				}
			})
		}
	}
	t.Run("bad-bodies", func(t *testing.T) {
		t.Parallel()
		f := start(t, "dell")
		f.c.login(t)
		target := "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset"
		for _, body := range []any{nil, map[string]string{}, map[string]int{"ResetType": 1}, "On"} {
			if r := f.c.do(t, "POST", target, body); r.status != http.StatusBadRequest {
				t.Errorf("body %v: %d", body, r.status)
			}
		}
		if len(f.m.Actions()) != 0 {
			t.Fatalf("bad bodies reached the machine: %v", f.m.Actions())
		}
	})
}

func TestSELView(t *testing.T) {
	t.Parallel()
	check := map[string]func(t *testing.T, e map[string]any){
		"dell": func(t *testing.T, e map[string]any) {
			if e["EntryType"] != "SEL" || e["SensorType"] != nil || !strings.HasSuffix(e["Created"].(string), "-05:00") {
				t.Errorf("not iDRAC style: %v", e)
			}
		},
		"hpe": func(t *testing.T, e map[string]any) {
			if e["EntryType"] != "Oem" || e["OemRecordFormat"] != "Hpe-IML" || e["Oem"].(map[string]any)["Hpe"].(map[string]any)["Severity"] != "Critical" {
				t.Errorf("not IML style: %v", e)
			}
		},
		"lenovo": func(t *testing.T, e map[string]any) {
			if e["OemRecordFormat"] != "Lenovo" || !strings.HasPrefix(e["EventId"].(string), "0x806f0120") || !strings.HasSuffix(e["Created"].(string), "+00:00") {
				t.Errorf("not XCC style: %v", e)
			}
		},
		"supermicro": func(t *testing.T, e map[string]any) {
			raw := e["Oem"].(map[string]any)["Supermicro"].(map[string]any)["RawEventData"].(map[string]any)
			if e["SensorType"] != "OS Stop/Shutdown" || raw["SensorType"] != "0x20" || !strings.HasPrefix(e["Message"].(string), "[") {
				t.Errorf("not Supermicro style: %v", e)
			}
		},
		"dmtf": func(t *testing.T, e map[string]any) {
			if e["SensorType"] != "OS Stop/Shutdown" || e["EntryType"] != "SEL" {
				t.Errorf("not DMTF style: %v", e)
			}
		},
	}
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := start(t, v)
			f.m.Panic()
			f.c.login(t)
			if f.srv.SELService() != known[v].sel {
				t.Fatalf("SELService %s", f.srv.SELService())
			}
			coll := f.c.do(t, "GET", known[v].sel+"/Entries", nil).json(t)
			members := coll["Members"].([]any)
			want := known[v].captured + len(f.m.SEL())
			if len(members) != want || coll["Members@odata.count"].(float64) != float64(want) {
				t.Fatalf("%d members (count %v), want %d", len(members), coll["Members@odata.count"], want)
			}
			var panicEntry map[string]any
			for _, m := range members {
				e := m.(map[string]any)
				if strings.HasPrefix(e["Message"].(string), "OS Critical Stop") || strings.Contains(e["Message"].(string), "] OS Critical Stop") {
					panicEntry = e
				}
			}
			if panicEntry == nil || panicEntry["Severity"] != "Critical" {
				t.Fatalf("no Critical OS stop entry among %d", len(members))
			}
			check[v](t, panicEntry)
			// Its own URI answers too.
			r := f.c.do(t, "GET", panicEntry["@odata.id"].(string), nil)
			if r.status != 200 || r.json(t)["Id"] != panicEntry["Id"] {
				t.Fatalf("GET %s: %d", panicEntry["@odata.id"], r.status)
			}
			// iDRAC lists newest first, the others oldest first.
			first := members[0].(map[string]any)["Message"].(string)
			if (v == "dell") != strings.Contains(first, "Linux kernel panic") {
				t.Errorf("first entry %q in the wrong order for %s", first, v)
			}
		})
	}
}

func TestClearLog(t *testing.T) {
	t.Parallel()
	for _, v := range vendorNames {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := start(t, v)
			f.m.Panic()
			f.c.login(t)
			sel := known[v].sel
			if other := known[v].otherLog; other != "" {
				before := len(f.c.do(t, "GET", other+"/Entries", nil).json(t)["Members"].([]any))
				if r := f.c.do(t, "POST", other+"/Actions/LogService.ClearLog", struct{}{}); r.status >= 300 {
					t.Fatalf("clear %s: %d", other, r.status)
				}
				if f.m.SELClears() != 0 || len(f.m.SEL()) == 0 {
					t.Fatalf("clearing %s cleared the machine's SEL", other)
				}
				if n := len(f.c.do(t, "GET", other+"/Entries", nil).json(t)["Members"].([]any)); before == 0 || n != 0 {
					t.Fatalf("%s: %d entries before, %d after clearing", other, before, n)
				}
			}
			if r := f.c.do(t, "POST", sel+"/Actions/LogService.ClearLog", struct{}{}); r.status >= 300 {
				t.Fatalf("clear SEL: %d %s", r.status, r.body)
			}
			if f.m.SELClears() != 1 || len(f.m.SEL()) != 0 {
				t.Fatal("machine SEL not cleared")
			}
			if n := len(f.c.do(t, "GET", sel+"/Entries", nil).json(t)["Members"].([]any)); n != 0 {
				t.Fatalf("%d entries after ClearLog", n)
			}
			f.m.Panic() // new records after a clear show up alone
			if n := len(f.c.do(t, "GET", sel+"/Entries", nil).json(t)["Members"].([]any)); n != len(f.m.SEL()) {
				t.Fatalf("%d entries, machine has %d", n, len(f.m.SEL()))
			}
			want := []string{sel}
			if known[v].otherLog != "" {
				want = []string{known[v].otherLog, sel}
			}
			if got := f.srv.ClearedLogs(); !slices.Equal(got, want) {
				t.Fatalf("ClearedLogs %v, want %v", got, want)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	t.Run("dead", func(t *testing.T) {
		t.Parallel()
		f := start(t, "dmtf", func(c *Config) { c.Dead = true })
		c, err := net.DialTimeout("tcp", f.srv.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatalf("a dead BMC still accepts TCP: %v", err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("a dead BMC answered: %d %v", n, err)
		}
	})
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, f *fixture, r response, err error)
	}{
		{"reset", Faults{ResetConnections: true}, func(t *testing.T, f *fixture, r response, err error) {
			if err == nil {
				t.Fatalf("got %d, want a connection error", r.status)
			}
		}},
		{"malformed-json", Faults{MalformedJSON: true}, func(t *testing.T, f *fixture, r response, err error) {
			if err != nil || r.status != 200 || json.Valid(r.body) {
				t.Fatalf("%d %v valid=%v", r.status, err, json.Valid(r.body))
			}
		}},
		{"truncated", Faults{TruncateBody: true}, func(t *testing.T, f *fixture, r response, err error) {
			if err == nil {
				t.Fatalf("read a truncated body without error: %d bytes", len(r.body))
			}
		}},
		{"absolute-links", Faults{AbsoluteHost: "bmc.example.com"}, func(t *testing.T, f *fixture, r response, err error) {
			if err != nil || !strings.Contains(string(r.body), `"https://bmc.example.com/redfish/v1/Systems/1"`) {
				t.Fatalf("%v %s", err, r.body)
			}
		}},
		{"redirect", Faults{RedirectHost: "bmc.example.com"}, func(t *testing.T, f *fixture, r response, err error) {
			if err != nil || r.status != http.StatusTemporaryRedirect || r.header.Get("Location") != "https://bmc.example.com/redfish/v1/Systems" {
				t.Fatalf("%v %d %q", err, r.status, r.header.Get("Location"))
			}
		}},
		{"only-other-paths", Faults{ResetConnections: true, Only: "/redfish/v1/Managers"}, func(t *testing.T, f *fixture, r response, err error) {
			if err != nil || r.status != 200 {
				t.Fatalf("a fault for other paths hit: %v %d", err, r.status)
			}
		}},
		{"slow", Faults{Delay: 150 * time.Millisecond}, func(t *testing.T, f *fixture, r response, err error) {
			if err != nil || r.status != 200 {
				t.Fatalf("%v %d", err, r.status)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, "supermicro")
			f.c.basic = true
			f.srv.SetFaults(tc.faults)
			started := time.Now()
			r, err := f.c.try("GET", "/redfish/v1/Systems", nil)
			tc.check(t, f, r, err)
			if tc.faults.Delay > 0 && time.Since(started) < tc.faults.Delay {
				t.Fatal("not delayed")
			}
		})
	}
	t.Run("no-sessions", func(t *testing.T) {
		t.Parallel()
		f := start(t, "lenovo")
		f.srv.SetFaults(Faults{NoSessions: true})
		root := f.c.do(t, "GET", "/redfish/v1", nil).json(t)
		if _, ok := root["Links"].(map[string]any)["Sessions"]; ok {
			t.Fatal("root still links Sessions")
		}
		if r := f.c.do(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": testUser, "Password": testPass}); r.status != http.StatusMethodNotAllowed {
			t.Fatalf("login: %d", r.status)
		}
	})
	t.Run("hide-legacy", func(t *testing.T) {
		t.Parallel()
		f := start(t, "dell")
		f.c.basic = true
		f.srv.SetFaults(Faults{HideLegacy: true})
		ch := f.c.do(t, "GET", "/redfish/v1/Chassis/System.Embedded.1", nil).json(t)
		if _, ok := ch["Thermal"]; ok {
			t.Fatal("chassis still links Thermal")
		}
		if _, ok := ch["ThermalSubsystem"]; !ok {
			t.Fatal("ThermalSubsystem gone too")
		}
		if r := f.c.do(t, "GET", "/redfish/v1/Chassis/System.Embedded.1/Power", nil); r.status != 404 {
			t.Fatalf("Power: %d", r.status)
		}
	})
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	m := machine.New("x", machine.DerivedIdentity("x"))
	defer m.Close()
	ip := newAddr(t)
	for name, cfg := range map[string]Config{
		"unknown-vendor": {Addr: netip.AddrPortFrom(ip, 0), Vendor: "acme", Machine: m},
		"no-machine":     {Addr: netip.AddrPortFrom(ip, 0), Vendor: "dell"},
		"no-address":     {Vendor: "dell", Machine: m},
	} {
		if s, err := Start(cfg); err == nil {
			s.Close()
			t.Errorf("%s: started", name)
		}
	}
	f := start(t, "dell")
	if s, err := Start(Config{Addr: f.srv.Addr(), Vendor: "dell", Machine: m}); err == nil {
		s.Close()
		t.Error("two servers on one address")
	}
}

// TestManyServers starts and stops a few hundred servers in one process
// and checks that Close leaves nothing behind.
func TestManyServers(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	before := runtime.NumGoroutine()
	const n = 200
	var servers []*Server
	var machines []*machine.Machine
	for i := 0; i < n; i++ {
		ip := newAddr(t)
		m := machine.New("x", machine.DerivedIdentity(ip.String()))
		machines = append(machines, m)
		s, err := Start(Config{Addr: netip.AddrPortFrom(ip, 0), Vendor: vendorNames[i%len(vendorNames)], Username: testUser, Password: testPass, Machine: m, Dead: i%50 == 7})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	var wg sync.WaitGroup
	for _, s := range servers[:20] {
		if s.cfg.Dead {
			continue
		}
		wg.Add(1)
		go func(s *Server) {
			defer wg.Done()
			c := newClient(s)
			c.basic = true
			if r, err := c.try("GET", "/redfish/v1/Systems", nil); err != nil || r.status != 200 {
				t.Errorf("%s: %v %d", s.Addr(), err, r.status)
			}
			c.hc.CloseIdleConnections()
		}(s)
	}
	wg.Wait()
	for _, s := range servers {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// The address is free again at once.
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(s.Addr()))
		if err != nil {
			t.Fatalf("%s still taken after Close: %v", s.Addr(), err)
		}
		ln.Close()
	}
	for _, m := range machines {
		m.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Fatalf("%d goroutines before, %d after closing %d servers", before, g, n)
	}
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	f := start(t, "hpe")
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := newClient(f.srv)
			c.login(t)
			for j := 0; j < 10; j++ {
				rt := []string{"ForceOff", "On"}[j%2]
				c.do(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": rt})
				c.do(t, "GET", "/redfish/v1/Systems/1", nil)
				c.do(t, "GET", "/redfish/v1/Systems/1/LogServices/IML/Entries", nil)
			}
			if i%2 == 0 {
				c.do(t, "POST", "/redfish/v1/Systems/1/LogServices/IML/Actions/LogService.ClearLog", struct{}{})
			}
		}(i)
	}
	wg.Wait()
	if got := len(f.srv.ResetTypes()); got != 160 {
		t.Fatalf("%d resets recorded, want 160", got)
	}
}

func TestLogWriter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	f := start(t, "dmtf", func(c *Config) { c.Log = w })
	f.c.do(t, "GET", "/redfish/v1/", nil)
	f.c.do(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": testUser, "Password": testPass})
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "GET /redfish/v1/ 200") || !strings.Contains(out, "POST /redfish/v1/SessionService/Sessions 201") {
		t.Fatalf("log:\n%s", out)
	}
	if strings.Contains(out, testPass) {
		t.Fatal("log shows the password")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func FuzzParseObject(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":[1,2]},"a":3}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseObject(b)
		if err != nil {
			return
		}
		out, err := o.MarshalJSON()
		if err != nil || !json.Valid(out) {
			t.Fatalf("round trip of %q gave %q (%v)", b, out, err)
		}
		o2, err := parseObject(out)
		if err != nil || len(o2) != len(o) {
			t.Fatalf("second parse: %v, %d members, want %d", err, len(o2), len(o))
		}
		for i := range o {
			if o[i].Key != o2[i].Key {
				t.Fatalf("member order changed: %q vs %q", o[i].Key, o2[i].Key)
			}
		}
	})
}
