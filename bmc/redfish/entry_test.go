package redfish

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmm-project/rmm/bmc"
	redfishtrees "github.com/rmm-project/rmm/testdata/redfish"
)

func TestParseCreated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2024-06-11T00:13:00-05:00", time.Date(2024, 6, 11, 5, 13, 0, 0, time.UTC), true},         // iDRAC
		{"2023-01-18T23:13:27Z", time.Date(2023, 1, 18, 23, 13, 27, 0, time.UTC), true},            // iLO, Supermicro
		{"2024-07-18T22:02:12.068+00:00", time.Date(2024, 7, 18, 22, 2, 12, 68e6, time.UTC), true}, // XCC
		{"2024-11-15T06:18:37", time.Date(2024, 11, 15, 6, 18, 37, 0, time.UTC), true},             // no offset
		{"2024-11-15T06:18:37+0100", time.Date(2024, 11, 15, 5, 18, 37, 0, time.UTC), true},        // offset without colon
		{"2024-11-15 06:18:37", time.Date(2024, 11, 15, 6, 18, 37, 0, time.UTC), true},             // space
		{" 2023-01-18T23:13:27Z ", time.Date(2023, 1, 18, 23, 13, 27, 0, time.UTC), true},          // padded
		{"1970-01-01T00:00:00Z", time.Time{}, false},                                               // unset RTC
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseCreated(tc.in)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Fatalf("parseCreated(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseEntry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want bmc.SELEntry
	}{
		{
			name: "dell-null-sensor-type",
			raw:  `{"Id":"1024","Created":"2024-06-11T00:13:00-05:00","EntryCode":"Assert","EntryType":"SEL","Message":"An OEM diagnostic event occurred.","SensorNumber":26,"SensorType":null,"Severity":"OK"}`,
			want: bmc.SELEntry{ID: "1024", Time: time.Date(2024, 6, 11, 5, 13, 0, 0, time.UTC), SensorNumber: 26, Direction: "asserted", Severity: bmc.SeverityInfo, Message: "An OEM diagnostic event occurred."},
		},
		{
			name: "dell-os-stop-by-message",
			raw:  `{"Id":"1025","Created":"2024-06-11T00:13:00-05:00","EntryCode":"Assert","Message":"OS Critical Stop: run-time critical stop (kernel panic)","SensorType":null,"SensorNumber":1,"Severity":"Critical"}`,
			want: bmc.SELEntry{ID: "1025", Time: time.Date(2024, 6, 11, 5, 13, 0, 0, time.UTC), SensorType: "OS Critical Stop", SensorTypeCode: 0x20, SensorNumber: 1, Direction: "asserted", Severity: bmc.SeverityCritical, Message: "OS Critical Stop: run-time critical stop (kernel panic)"},
		},
		{
			name: "supermicro-oem-sensor",
			raw:  `{"Id":"1","EntryType":"SEL","Severity":"Warning","Created":"2023-07-21T15:35:03Z","EntryCode":"Assert","OemSensorType":"System NIC","SensorNumber":255,"Message":"[LAN-0006] Dedicated LAN Link Down","Oem":{"Supermicro":{"RawEventData":{"EventDirAndType":"0x6F","SensorType":"0xD0","SensorName":null}}}}`,
			want: bmc.SELEntry{ID: "1", Time: time.Date(2023, 7, 21, 15, 35, 3, 0, time.UTC), SensorType: "System NIC", SensorTypeCode: 0xd0, SensorNumber: 255, Direction: "asserted", Severity: bmc.SeverityWarning, Message: "[LAN-0006] Dedicated LAN Link Down"},
		},
		{
			name: "supermicro-redfish-sensor-type",
			raw:  `{"Id":"82","Created":"2023-11-30T20:35:05Z","EntryCode":"Assert","SensorType":"Power Supply / Converter","SensorNumber":199,"Message":"[PWR-0000] PS8 Status, Power Supply Installed","Severity":"OK"}`,
			want: bmc.SELEntry{ID: "82", Time: time.Date(2023, 11, 30, 20, 35, 5, 0, time.UTC), SensorType: "Power Supply", SensorTypeCode: 0x08, SensorNumber: 199, Direction: "asserted", Severity: bmc.SeverityInfo, Message: "[PWR-0000] PS8 Status, Power Supply Installed"},
		},
		{
			name: "dmtf-os-stop",
			raw:  `{"@odata.id":"/redfish/v1/Systems/437XR1138R2/LogServices/Log1/Entries/3","Name":"Log Entry 3","EntryType":"SEL","Severity":"Critical","Created":"2026-01-02T03:04:05Z","EntryCode":"Assert","SensorType":"OS Stop/Shutdown","SensorNumber":1,"Message":"kernel panic"}`,
			want: bmc.SELEntry{ID: "3", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), SensorType: "OS Critical Stop", SensorTypeCode: 0x20, SensorNumber: 1, Direction: "asserted", Severity: bmc.SeverityCritical, Message: "kernel panic"},
		},
		{
			name: "dmtf-threshold-event-code",
			raw:  `{"Id":"1","Severity":"Critical","Created":"2012-03-07T14:44:00Z","EntryCode":"Upper Critical - going high","SensorType":"Temperature","SensorNumber":1,"Message":"Temperature threshold exceeded"}`,
			want: bmc.SELEntry{ID: "1", Time: time.Date(2012, 3, 7, 14, 44, 0, 0, time.UTC), SensorType: "Temperature", SensorTypeCode: 0x01, SensorNumber: 1, Event: "Upper Critical - going high", Severity: bmc.SeverityCritical, Message: "Temperature threshold exceeded"},
		},
		{
			name: "lenovo-event-id",
			raw:  `{"EntryType":"Oem","OemRecordFormat":"Lenovo","Created":"2024-07-18T22:00:55.851+00:00","EventId":"0x806f01200100ffff","Id":"6","Severity":"Critical","Message":"OS stop"}`,
			want: bmc.SELEntry{ID: "6", Time: time.Date(2024, 7, 18, 22, 0, 55, 851e6, time.UTC), SensorType: "OS Critical Stop", SensorTypeCode: 0x20, Event: "Run-time critical stop", Severity: bmc.SeverityCritical, Message: "OS stop"},
		},
		{
			name: "lenovo-non-ipmi-event-id",
			raw:  `{"Created":"2024-07-18T22:01:27.954+00:00","EventId":"0x4000000100000000","Id":"2","Severity":"OK","Message":"Network Initialization Complete."}`,
			want: bmc.SELEntry{ID: "2", Time: time.Date(2024, 7, 18, 22, 1, 27, 954e6, time.UTC), Severity: bmc.SeverityInfo, Message: "Network Initialization Complete."},
		},
		{
			name: "hpe-iml-oem-severity",
			raw:  `{"Id":"9","Created":"2023-01-18T23:13:27Z","EntryType":"Oem","Message":"Fan failure","Oem":{"Hpe":{"Severity":"Caution"}},"OemRecordFormat":"Hpe-IML"}`,
			want: bmc.SELEntry{ID: "9", Time: time.Date(2023, 1, 18, 23, 13, 27, 0, time.UTC), Severity: bmc.SeverityWarning, Message: "Fan failure"},
		},
		{
			name: "panic-string-record-is-not-the-panic",
			raw:  `{"Id":"7","Created":"2026-01-02T03:04:05Z","SensorType":"OEM","Message":"Linux kernel panic: Fatal excep","Severity":"Critical"}`,
			want: bmc.SELEntry{ID: "7", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Severity: bmc.SeverityCritical, Message: "Linux kernel panic: Fatal excep"},
		},
		{
			name: "wrong-types-tolerated",
			raw:  `{"Id":12,"Created":5,"SensorType":{"x":1},"SensorNumber":"0x1f","Severity":["OK"],"Message":null}`,
			want: bmc.SELEntry{SensorNumber: 0x1f, Severity: bmc.SeverityInfo},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEntry([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			got.Time, tc.want.Time = got.Time.UTC(), tc.want.Time.UTC()
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := parseEntry([]byte(`[1,2]`)); err == nil {
		t.Fatal("an array parsed as an entry")
	}
}

// TestParseCapturedEntries decodes every log entry in the five trees:
// all must parse and carry a time.
func TestParseCapturedEntries(t *testing.T) {
	t.Parallel()
	for vendor := range redfishtrees.Folders {
		t.Run(vendor, func(t *testing.T) {
			tree, _ := redfishtrees.Tree(vendor)
			n := 0
			err := fs.WalkDir(tree, "redfish", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !strings.HasSuffix(p, "/Entries/index.json") {
					return err
				}
				b, err := fs.ReadFile(tree, p)
				if err != nil {
					return err
				}
				var c struct{ Members []json.RawMessage }
				if err := json.Unmarshal(b, &c); err != nil {
					return err
				}
				for _, m := range c.Members {
					e, err := parseEntry(m)
					if err != nil {
						t.Errorf("%s: %v", p, err)
						continue
					}
					if e.ID == "" {
						t.Errorf("%s: entry %+v has no id", p, e)
					}
					// No time is right only for what is not one: XCC's
					// diagnostic dumps carry none, iLO writes the unset
					// RTC ("1970-01-01T00:01:38Z") and "0000-00-00T00:00:00Z".
					var raw struct{ Created string }
					_ = json.Unmarshal(m, &raw)
					if e.Time.IsZero() && raw.Created != "" && !strings.HasPrefix(raw.Created, "1970-") && !strings.HasPrefix(raw.Created, "0000-") {
						t.Errorf("%s: entry %s: time %q not parsed", p, e.ID, raw.Created)
					}
					n++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("no entries found")
			}
		})
	}
}

func TestVetLinks(t *testing.T) {
	t.Parallel()
	g := newGuard(bmc.Target{Name: "x", Addr: netip.MustParseAddr("127.0.40.9")})
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"relative", `{"@odata.id":"/redfish/v1/Systems/1"}`, `{"@odata.id":"/redfish/v1/Systems/1"}`, nil},
		{"self-absolute", `{"@odata.id":"https://127.0.40.9/redfish/v1/Systems/1/"}`, `{"@odata.id":"/redfish/v1/Systems/1/"}`, nil},
		{"self-absolute-port", `{"Members":[{"@odata.id":"https://127.0.40.9:443/redfish/v1/Systems/1"}]}`, `{"Members":[{"@odata.id":"/redfish/v1/Systems/1"}]}`, nil},
		{"foreign-host", `{"target":"https://bmc.example.com/redfish/v1/Actions/X"}`, `{"target":"/rmm-refused-link///bmc.example.com/redfish/v1/Actions/X"}`, nil},
		{"foreign-port", `{"@odata.nextLink":"https://127.0.40.9:8443/redfish/v1/X"}`, `{"@odata.nextLink":"/rmm-refused-link///127.0.40.9:8443/redfish/v1/X"}`, nil},
		{"data-url-untouched", `{"LearnMoreLink":"http://www.hpe.com/support"}`, `{"LearnMoreLink":"http://www.hpe.com/support"}`, nil},
		{"malformed", `{"a":`, "", bmc.ErrProtocol},
		{"trailing-garbage", `{"a":1} x`, "", bmc.ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := g.vet([]byte(tc.in))
			if tc.err != nil {
				if err == nil || !strings.Contains(err.Error(), tc.err.Error()) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestNormalizeUUID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"00000000-0000-0000-0000-7CC25550A8FF":   "00000000-0000-0000-0000-7cc25550a8ff",
		" 6173ECEC6EF511EE834A0A8FC3A58A71 ":     "6173ecec-6ef5-11ee-834a-0a8fc3a58a71",
		"{4c4c4544-0035-3410-8050-c6c04f314733}": "4c4c4544-0035-3410-8050-c6c04f314733",
		"not-a-uuid":                             "not-a-uuid",
	} {
		if got := NormalizeUUID(in); got != want {
			t.Errorf("NormalizeUUID(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	tree, _ := redfishtrees.Tree("lenovo")
	if b, err := fs.ReadFile(tree, "redfish/v1/Systems/1/LogServices/PlatformLog/Entries/1/index.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"Id":"1","Created":"2024-06-11T00:13:00-05:00","SensorType":"OS Stop/Shutdown","EventId":"0x806f01200100ffff"}`))
	f.Add([]byte(`{"Oem":{"Supermicro":{"RawEventData":{"SensorType":"0x20"}}},"SensorNumber":1e300}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEntry(b)
		if err != nil {
			return
		}
		if e.Severity.Rank() < 0 {
			t.Fatalf("severity %q", e.Severity)
		}
		if e.SensorTypeCode != 0 && e.SensorType == "" && ipmiSensorNames[e.SensorTypeCode] != "" {
			t.Fatalf("code 0x%02x without its name", e.SensorTypeCode)
		}
	})
}

func FuzzParseCreated(f *testing.F) {
	for _, s := range []string{"2024-06-11T00:13:00-05:00", "2023-01-18T23:13:27Z", "2024-07-18T22:02:12.068+00:00", "2024-11-15T06:18:37"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tm, ok := parseCreated(s); ok && tm.Year() < 1990 {
			t.Fatalf("accepted %v", tm)
		}
	})
}

// FuzzVet: whatever a BMC sends, vet never panics, and what it passes on is
// valid JSON whose links never name another host.
func FuzzVet(f *testing.F) {
	g := newGuard(bmc.Target{Name: "x", Addr: netip.MustParseAddr("127.0.40.9")})
	f.Add([]byte(`{"@odata.id":"https://bmc.example.com/redfish/v1"}`))
	f.Add([]byte(`{"Members":[{"@odata.id":"//evil/x"},{"target":"https://127.0.40.9/x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := g.vet(b)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("vet passed invalid JSON: %q", out)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("vet passed JSON it cannot decode: %v", err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					if s, ok := e.(string); ok && isLinkKey(k) {
						if _, isAbs, err := g.relative(s); isAbs && err != nil {
							t.Fatalf("foreign link %q passed", s)
						}
					}
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(v)
	})
}

func TestReadingNullStaysAbsent(t *testing.T) {
	var v struct {
		A reading
		B reading
		C reading
	}
	if err := json.Unmarshal([]byte(`{"A": null, "B": 42.5, "C": "n/a"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A.v != nil || v.C.v != nil {
		t.Errorf("null/non-number became a value: %v %v", v.A.v, v.C.v)
	}
	if v.B.v == nil || *v.B.v != 42.5 {
		t.Errorf("B = %v", v.B.v)
	}
}
