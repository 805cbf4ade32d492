package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// series is one sample whose label pairs may be shared with other series.
//
// A deployment is fourteen series, all labelled with its id and name.
// prometheus.MustNewConstMetric builds every series' label pairs afresh:
// for a thousand deployments that was most of a scrape's allocations, its
// garbage collection and the exporter's peak memory. Building a
// deployment's pairs once and sharing them is what this type is for; its
// output is the same.
type series struct {
	desc      *prometheus.Desc
	valueType prometheus.ValueType
	value     float64
	// labels must be sorted by name and match desc's variable labels; the
	// tests gather through a pedantic registry, which checks both.
	labels []*dto.LabelPair
}

func (s *series) Desc() *prometheus.Desc { return s.desc }

func (s *series) Write(m *dto.Metric) error {
	m.Label = s.labels
	if s.valueType == prometheus.CounterValue {
		m.Counter = &dto.Counter{Value: &s.value}
	} else {
		m.Gauge = &dto.Gauge{Value: &s.value}
	}
	return nil
}

func labelPair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: &name, Value: &value}
}
