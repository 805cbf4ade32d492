package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// TrafficCollector publishes the latest /stats, which the observation path
// fetches in the background, where a hung JVM cannot block a scrape.
type TrafficCollector struct {
	deployments RunningDeployments

	prediction, request, lastPrediction *prometheus.Desc
	// api and method of GET and POST /predict, GET and POST /pypredict.
	requestPairs [4][]*dto.LabelPair
}

var _ prometheus.Collector = (*TrafficCollector)(nil)

// NewTrafficCollector returns a collector of deployments' latest /stats.
func NewTrafficCollector(deployments RunningDeployments) *TrafficCollector {
	labels := []string{"deployment_id", "deployment"}
	var requestPairs [4][]*dto.LabelPair
	for i, r := range []struct{ method, api string }{{"GET", "java"}, {"POST", "java"}, {"GET", "python"}, {"POST", "python"}} {
		requestPairs[i] = []*dto.LabelPair{labelPair("api", r.api), labelPair("method", r.method)}
	}
	return &TrafficCollector{
		requestPairs: requestPairs,
		deployments:  deployments,
		prediction: prometheus.NewDesc("steam_deployment_prediction_duration_seconds",
			"Predictions the deployment's model made and the time they took, as its scoring service counts them since its JVM started.",
			labels, nil),
		request: prometheus.NewDesc("steam_deployment_request_duration_seconds",
			"Prediction requests the deployment's scoring service answered and the time they took, by HTTP method, api java (/predict) or python (/pypredict).",
			append(labels, "method", "api"), nil),
		lastPrediction: prometheus.NewDesc("steam_deployment_last_prediction_timestamp_seconds",
			"When the deployment's model last made a prediction, since the Unix epoch; absent before its first.",
			labels, nil),
	}
}

func (c *TrafficCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.prediction
	ch <- c.request
	ch <- c.lastPrediction
}

func (c *TrafficCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.deployments() {
		s := d.Stats
		if s == nil {
			continue
		}
		base := deploymentPairs(d.ID, d.Name)
		ch <- &summary{desc: c.prediction, count: uint64(s.Prediction.Count), sum: s.Prediction.TotalTimeMs / 1000, labels: base}
		for i, t := range []scorestats.Times{s.Get, s.Post, s.PythonGet, s.PythonPost} {
			ch <- &summary{desc: c.request, count: uint64(t.Count), sum: t.TotalTimeMs / 1000,
				labels: withPairs(base, c.requestPairs[i]...)}
		}
		if s.LastTime > 0 {
			ch <- &series{desc: c.lastPrediction, valueType: prometheus.GaugeValue, value: float64(s.LastTime) / 1000, labels: base}
		}
	}
}
