package fakescorer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/steam-overseer/steam-overseer/internal/scorestats"
)

// /stats takes the exporter's strict decoder and counts the /predict calls
// made, GET and POST apart, as Steam's StatsServlet does.
func TestStatsCountsPredictions(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(handler(Behaviour{Mode: "normal"}, time.Now().Add(-time.Minute)))
	defer srv.Close()
	fetch := func() *scorestats.Stats {
		t.Helper()
		s, err := scorestats.Fetch(context.Background(), srv.Client(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := fetch(); s.Prediction.Count != 0 || s.LastTime != 0 || s.UpTimeMs < 60_000 {
		t.Errorf("before any prediction: %+v", s)
	}
	const gets, posts = 4, 3
	for i := range gets + posts {
		var resp *http.Response
		var err error
		if i < gets {
			resp, err = http.Get(srv.URL + "/predict?x=1")
		} else {
			resp, err = http.Post(srv.URL+"/predict", "application/json", strings.NewReader(`{"x":1}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	s := fetch()
	if s.Prediction.Count != gets+posts || s.Get.Count != gets || s.Post.Count != posts ||
		s.LastTime < s.StartTime || s.WarmUpCount != warmUpCount || s.Prediction.TotalTimeMs <= 0 ||
		s.Prediction.AverageAfterWarmupTime <= 0 {
		t.Errorf("after %d GET and %d POST predictions: %+v", gets, posts, s)
	}
}
