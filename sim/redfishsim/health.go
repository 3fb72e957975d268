package redfishsim

import (
	"encoding/json"
	"strings"

	"github.com/rmm-project/rmm/sim/machine"
)

// The machine's temperature sensors (machine.Sensors) live in every tree:
// the captured CPU and inlet temperatures of each chassis are replaced by
// the machine's readings, thresholds and health, in the legacy Thermal
// resource and in the Sensors collection alike, and the machine's worst
// sensor raises the System's and every Chassis's Status.HealthRollup. So
// the overheat scenario looks the same over Redfish as over IPMI: CPU
// temperature above its critical threshold, Health Critical, rollups
// Critical. The rest of the tree stays as captured, quirks included (iLO's
// chassis reads Critical whatever the machine does).

// tempSlot says which captured temperature stands for which machine
// sensor.
type tempSlot struct {
	cpu, inlet string // captured sensor names; "" when the tree has none
}

// machineSensor returns the machine sensor a captured temperature named
// name stands for in slot, "" for none.
func (s tempSlot) machineSensor(name string) string {
	switch {
	case name == "":
		return ""
	case name == s.cpu:
		return machine.SensorCPUTemp
	case name == s.inlet:
		return machine.SensorInletTemp
	}
	return ""
}

// capturedTemp is what picking a slot needs to know of a temperature.
type capturedTemp struct {
	Name            string
	PhysicalContext string
	Status          struct{ State string }
}

// pickSlot chooses, among a chassis's captured temperatures in the
// vendor's order, the first enabled CPU one (iDRAC "CPU1 Temp", iLO "02-CPU
// 1", XCC "CPU 1 Temp") and the intake one (PhysicalContext Intake, else a
// name with Inlet or Ambient: iDRAC "System Board Inlet Temp").
func pickSlot(temps []capturedTemp) tempSlot {
	var s tempSlot
	usable := func(t capturedTemp) bool {
		switch strings.ToLower(t.Status.State) {
		case "absent", "disabled":
			return false
		}
		return t.Name != ""
	}
	for _, t := range temps {
		if s.cpu == "" && usable(t) && t.PhysicalContext == "CPU" {
			s.cpu = t.Name
		}
	}
	for _, t := range temps {
		if s.inlet == "" && usable(t) && t.PhysicalContext == "Intake" {
			s.inlet = t.Name
		}
	}
	for _, t := range temps {
		n := strings.ToLower(t.Name)
		if s.inlet == "" && usable(t) && t.Name != s.cpu && (strings.Contains(n, "inlet") || strings.Contains(n, "ambient")) {
			s.inlet = t.Name
		}
	}
	return s
}

// addTemperatures records, for a chassis, its Thermal resource's slot and
// the Sensors collection members that are the same sensors. A chassis
// without Thermal picks from its Sensors.
func (t *tree) addTemperatures(ch object) {
	slot := tempSlot{}
	if th := cleanPath(ch.linkOf("Thermal")); th != "/" {
		if o, ok := t.object(th); ok {
			var temps []capturedTemp
			_ = json.Unmarshal(o.get("Temperatures"), &temps)
			slot = pickSlot(temps)
			t.thermal[th] = slot
		}
	}
	coll := cleanPath(ch.linkOf("Sensors"))
	if coll == "/" {
		return
	}
	type sensorDoc struct {
		capturedTemp
		ReadingType string
	}
	var docs []string
	var temps []capturedTemp
	for _, m := range t.members(coll) {
		b, ok := t.lookup(m)
		if !ok {
			continue
		}
		var d sensorDoc
		if json.Unmarshal(b, &d) != nil || d.ReadingType != "Temperature" {
			continue
		}
		docs = append(docs, m)
		temps = append(temps, d.capturedTemp)
	}
	if slot == (tempSlot{}) {
		slot = pickSlot(temps)
	}
	for i, m := range docs {
		if name := slot.machineSensor(temps[i].Name); name != "" {
			t.sensorDocs[m] = name
		}
	}
}

// redfishHealth is the Redfish Health of a machine sensor status; ok is
// false for an unavailable sensor.
func redfishHealth(status string) (string, bool) {
	switch status {
	case "critical":
		return "Critical", true
	case "warning":
		return "Warning", true
	case "ok":
		return "OK", true
	}
	return "", false
}

// healthRank orders Redfish Health values.
func healthRank(h string) int {
	switch strings.ToLower(h) {
	case "ok":
		return 0
	case "warning":
		return 1
	case "critical":
		return 2
	}
	return -1
}

// readings returns the machine's sensors by name.
func readings(m *machine.Machine) map[string]machine.SensorReading {
	out := map[string]machine.SensorReading{}
	for _, r := range m.Sensors() {
		out[r.Name] = r
	}
	return out
}

// worstHealth is the Redfish Health of the machine's worst readable
// sensor of kind ("" for any).
func worstHealth(m *machine.Machine, kind string) string {
	worst := "OK"
	for _, r := range m.Sensors() {
		if kind != "" && r.Kind != kind {
			continue
		}
		if h, ok := redfishHealth(r.Status()); ok && healthRank(h) > healthRank(worst) {
			worst = h
		}
	}
	return worst
}

// withStatus returns a Status object with Health (or, for an unavailable
// sensor, State UnavailableOffline and no Health) set, other members kept.
func withStatus(raw json.RawMessage, r machine.SensorReading) object {
	st, err := parseObject(raw)
	if err != nil {
		st = nil
	}
	st = st.clone()
	if h, ok := redfishHealth(r.Status()); ok {
		st.set("State", "Enabled")
		st.set("Health", h)
	} else {
		st.set("State", "UnavailableOffline")
		st.set("Health", nil)
	}
	return st
}

// reading is a sensor's value, null when it cannot be read.
func reading(r machine.SensorReading) any {
	if !r.Available {
		return nil
	}
	return r.Reading
}

// threshold is a threshold value, null for none (machine.Sensor's zero).
func threshold(v float64) any {
	if v == 0 {
		return nil
	}
	return v
}

// thermalDoc overlays the machine's temperatures on a Thermal resource.
func (s *Server) thermalDoc(o object, slot tempSlot) object {
	var temps []json.RawMessage
	if json.Unmarshal(o.get("Temperatures"), &temps) != nil {
		return o
	}
	rs := readings(s.cfg.Machine)
	for i, raw := range temps {
		e, err := parseObject(raw)
		if err != nil {
			continue
		}
		r, ok := rs[slot.machineSensor(e.getString("Name"))]
		if !ok {
			continue
		}
		e = e.clone()
		e.set("ReadingCelsius", reading(r))
		e.set("UpperThresholdNonCritical", threshold(r.UpperNonCritical))
		e.set("UpperThresholdCritical", threshold(r.UpperCritical))
		if e.get("UpperThresholdFatal") != nil {
			e.set("UpperThresholdFatal", nil) // the machine has no fatal level
		}
		e.set("Status", withStatus(e.get("Status"), r))
		temps[i], _ = e.MarshalJSON()
	}
	o = o.clone()
	o.set("Temperatures", temps)
	return o
}

// sensorDoc overlays a machine sensor on a Sensor resource.
func (s *Server) sensorDoc(o object, name string) object {
	r, ok := readings(s.cfg.Machine)[name]
	if !ok {
		return o
	}
	o = o.clone()
	o.set("Reading", reading(r))
	o.set("Status", withStatus(o.get("Status"), r))
	if th, err := parseObject(o.get("Thresholds")); err == nil {
		th = th.clone()
		setThreshold := func(key string, v float64) {
			lvl, err := parseObject(th.get(key))
			if err != nil {
				lvl = nil
			}
			lvl = lvl.clone()
			lvl.set("Reading", threshold(v))
			th.set(key, lvl)
		}
		setThreshold("UpperCaution", r.UpperNonCritical)
		setThreshold("UpperCritical", r.UpperCritical)
		if th.get("UpperFatal") != nil {
			setThreshold("UpperFatal", 0)
		}
		o.set("Thresholds", th)
	}
	return o
}

// withRollup raises a System's or Chassis's Status.HealthRollup to the
// machine's worst sensor, and, on iLO, the system's
// Oem.Hpe.AggregateHealthStatus.Temperatures; a worse captured value
// stays.
func (s *Server) withRollup(o object) object {
	worst := worstHealth(s.cfg.Machine, "")
	o = o.clone()
	st, err := parseObject(o.get("Status"))
	if err != nil {
		st = nil
	}
	st = st.clone()
	if healthRank(st.getString("HealthRollup")) < healthRank(worst) {
		st.set("HealthRollup", worst)
	}
	o.set("Status", st)

	oem, err := parseObject(o.get("Oem"))
	if err != nil {
		return o
	}
	hpe, err := parseObject(oem.get("Hpe"))
	if err != nil {
		return o
	}
	agg, err := parseObject(hpe.get("AggregateHealthStatus"))
	if err != nil {
		return o
	}
	temps, err := parseObject(agg.get("Temperatures"))
	if err != nil {
		return o
	}
	hot := worstHealth(s.cfg.Machine, "temperature")
	tst, err := parseObject(temps.get("Status"))
	if err != nil || healthRank(tst.getString("Health")) >= healthRank(hot) {
		return o
	}
	tst = tst.clone()
	tst.set("Health", hot)
	temps = temps.clone()
	temps.set("Status", tst)
	agg = agg.clone()
	agg.set("Temperatures", temps)
	hpe = hpe.clone()
	hpe.set("AggregateHealthStatus", agg)
	oem = oem.clone()
	oem.set("Hpe", hpe)
	o.set("Oem", oem)
	return o
}
