package collector

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// TrafficCollector publishes the latest /stats, which the observation path
// fetches in the background, where a hung JVM cannot block a scrape.
type TrafficCollector struct {
	deployments RunningDeployments

	prediction, request, lastPrediction *prometheus.Desc
}

var _ prometheus.Collector = (*TrafficCollector)(nil)

// NewTrafficCollector returns a collector of deployments' latest /stats.
func NewTrafficCollector(deployments RunningDeployments) *TrafficCollector {
	labels := []string{"deployment_id", "deployment"}
	return &TrafficCollector{
		deployments: deployments,
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
		labels := []string{d.ID, strings.ToValidUTF8(d.Name, "\uFFFD")}
		ch <- prometheus.MustNewConstSummary(c.prediction, uint64(s.Prediction.Count), s.Prediction.TotalTimeMs/1000, nil, labels...)
		for _, r := range []struct {
			method, api string
			count, ms   float64
		}{
			{"GET", "java", s.Get.Count, s.Get.TotalTimeMs},
			{"POST", "java", s.Post.Count, s.Post.TotalTimeMs},
			{"GET", "python", s.PythonGet.Count, s.PythonGet.TotalTimeMs},
			{"POST", "python", s.PythonPost.Count, s.PythonPost.TotalTimeMs},
		} {
			ch <- prometheus.MustNewConstSummary(c.request, uint64(r.count), r.ms/1000, nil, append(labels, r.method, r.api)...)
		}
		if s.LastTime > 0 {
			ch <- prometheus.MustNewConstMetric(c.lastPrediction, prometheus.GaugeValue, float64(s.LastTime)/1000, labels...)
		}
	}
}
