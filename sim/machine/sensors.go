package machine

import (
	"fmt"
	"slices"
)

// Sensor is one health sensor of the machine: a reading with thresholds, as
// an IPMI threshold sensor or a Redfish Thermal/Power reading presents it.
// Both BMC simulators read the same sensors, so "overheat" looks the same
// over either protocol.
type Sensor struct {
	// Name is the sensor's ID string ("CPU Temp"), at most 16 characters
	// so it fits an IPMI SDR.
	Name string
	// Kind is "temperature", "fan" or "voltage".
	Kind string
	// Unit is "C", "RPM" or "V".
	Unit    string
	Reading float64
	// Thresholds; zero means the sensor has none at that level (no real
	// sensor here has a threshold at exactly zero).
	LowerCritical, LowerNonCritical, UpperNonCritical, UpperCritical float64
	// Standby sensors are readable while the host is off (inlet
	// temperature, the PSU); the others read "unavailable" then, as a BMC
	// stops scanning host sensors at power-off.
	Standby bool
}

// SensorReading is a sensor as read at one moment.
type SensorReading struct {
	Sensor
	// Available is false when the sensor cannot be read (host off and not
	// a standby sensor).
	Available bool
}

// Status is "ok", "warning" (past a non-critical threshold) or "critical"
// (past a critical one), and "unavailable" for a sensor that cannot be read.
func (r SensorReading) Status() string {
	if !r.Available {
		return "unavailable"
	}
	s := r.Sensor
	switch {
	case s.UpperCritical != 0 && s.Reading >= s.UpperCritical,
		s.LowerCritical != 0 && s.Reading <= s.LowerCritical:
		return "critical"
	case s.UpperNonCritical != 0 && s.Reading >= s.UpperNonCritical,
		s.LowerNonCritical != 0 && s.Reading <= s.LowerNonCritical:
		return "warning"
	}
	return "ok"
}

// Sensor names of DefaultSensors.
const (
	SensorCPUTemp   = "CPU Temp"
	SensorInletTemp = "Inlet Temp"
	SensorFan1      = "Fan1"
	SensorFan2      = "Fan2"
	SensorPSUVolt   = "PSU1 12V"
)

// DefaultSensors is the sensor set of every simulated machine: two
// temperatures, two fans and the PSU's 12 V rail, all healthy.
func DefaultSensors() []Sensor {
	return []Sensor{
		{Name: SensorCPUTemp, Kind: "temperature", Unit: "C", Reading: 48, UpperNonCritical: 85, UpperCritical: 95},
		{Name: SensorInletTemp, Kind: "temperature", Unit: "C", Reading: 23, UpperNonCritical: 40, UpperCritical: 45, Standby: true},
		{Name: SensorFan1, Kind: "fan", Unit: "RPM", Reading: 5400, LowerCritical: 600, LowerNonCritical: 1020},
		{Name: SensorFan2, Kind: "fan", Unit: "RPM", Reading: 5460, LowerCritical: 600, LowerNonCritical: 1020},
		{Name: SensorPSUVolt, Kind: "voltage", Unit: "V", Reading: 12.06, LowerCritical: 10.8, LowerNonCritical: 11.4,
			UpperNonCritical: 12.6, UpperCritical: 13.2, Standby: true},
	}
}

// OverheatReading is the CPU temperature Overheat sets: above the upper
// critical threshold of DefaultSensors' "CPU Temp" (95 C).
const OverheatReading = 101

// Sensors returns every sensor's current reading, in a fixed order.
func (m *Machine) Sensors() []SensorReading {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SensorReading, len(m.sensors))
	for i, s := range m.sensors {
		out[i] = SensorReading{Sensor: s, Available: m.on || s.Standby}
	}
	return out
}

// SetSensorReading changes one sensor's reading, for tests and scenarios.
func (m *Machine) SetSensorReading(name string, v float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.sensors, func(s Sensor) bool { return s.Name == name })
	if i < 0 {
		return fmt.Errorf("machine %s: no sensor %q", m.Name, name)
	}
	m.sensors[i].Reading = v
	return nil
}

// Overheat puts the CPU temperature above its upper critical threshold.
func (m *Machine) Overheat() {
	_ = m.SetSensorReading(SensorCPUTemp, OverheatReading)
}
