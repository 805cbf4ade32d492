package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// inTurn serves its collectors' families one at a time: client_golang
// holds a whole gather in its exposition model, ~13 MB at 1000 deployments,
// and the Go heap grows to twice what it holds (BenchmarkExporterHeap). all
// still refuses a name published twice.
type inTurn struct {
	all        *prometheus.Registry
	collectors []prometheus.Collector
}

var _ prometheus.Registerer = (*inTurn)(nil)

func newInTurn() *inTurn { return &inTurn{all: prometheus.NewRegistry()} }

func (r *inTurn) Register(c prometheus.Collector) error {
	if err := r.all.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *inTurn) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *inTurn) Unregister(prometheus.Collector) bool { return false } // nothing here unregisters

// family is one Desc's metrics of a collection, for a registry of its own,
// which checks and sorts them as it would in a gather of everything.
type family struct {
	desc    *prometheus.Desc
	metrics []prometheus.Metric
}

func (f *family) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *family) Collect(ch chan<- prometheus.Metric) {
	for _, m := range f.metrics {
		ch <- m
	}
}

// batchCollector hands its series over a family or a few at a time, no
// family in two batches, so that each batch is written and dropped before
// the next is built (collector.Collector: 1000 deployments' series at once
// were the most the exporter's heap held).
type batchCollector interface {
	CollectInBatches(emit func([]prometheus.Metric))
}

// gather calls write with each family of c in turn. A series of a Desc that
// c does not describe is refused, as a registry refuses it.
func gather(c prometheus.Collector, write func(*dto.MetricFamily) error) error {
	var byDesc []*family
	index := map[*prometheus.Desc]int{}
	descs := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(descs)
		close(descs)
	}()
	for d := range descs {
		index[d] = len(byDesc)
		byDesc = append(byDesc, &family{desc: d})
	}
	unchecked := len(byDesc) == 0 // as a registry takes such a collector
	var errs []error
	written := map[*prometheus.Desc]bool{}
	add := func(m prometheus.Metric) {
		i, ok := index[m.Desc()]
		if !ok && unchecked {
			i, ok = len(byDesc), true
			index[m.Desc()] = i
			byDesc = append(byDesc, &family{desc: m.Desc()})
		}
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("collected metric of %s was not described", m.Desc()))
		case written[m.Desc()]:
			errs = append(errs, fmt.Errorf("collected metric of %s after its family was written", m.Desc()))
		default:
			byDesc[i].metrics = append(byDesc[i].metrics, m)
		}
	}
	// flush writes the families collected so far and drops them.
	flush := func() error {
		for _, f := range byDesc {
			if len(f.metrics) == 0 {
				continue
			}
			reg := prometheus.NewRegistry()
			if err := reg.Register(f); err != nil {
				return err
			}
			mfs, err := reg.Gather()
			f.metrics, written[f.desc] = nil, true
			if err != nil {
				errs = append(errs, err)
			}
			for _, mf := range mfs {
				if err := write(mf); err != nil {
					return err
				}
			}
		}
		return nil
	}
	collect := collectOnce(c)
	if bc, ok := c.(batchCollector); ok {
		collect = bc.CollectInBatches
	}
	var writeErr error
	collect(func(ms []prometheus.Metric) {
		if writeErr != nil {
			return
		}
		for _, m := range ms {
			add(m)
		}
		writeErr = flush()
	})
	if writeErr != nil {
		return writeErr
	}
	return errors.Join(errs...)
}

// collectOnce hands all of c's series over as one batch.
func collectOnce(c prometheus.Collector) func(emit func([]prometheus.Metric)) {
	return func(emit func([]prometheus.Metric)) {
		ch := make(chan prometheus.Metric, 256)
		go func() {
			c.Collect(ch)
			close(ch)
		}()
		var ms []prometheus.Metric
		for m := range ch {
			ms = append(ms, m)
		}
		emit(ms)
	}
}

// Handler serves the exposition format the request accepts, gzipped if it
// accepts gzip, only the families of its name[] parameters if any, as
// promhttp does; a collector that fails costs its own families and a log line.
func (r *inTurn) Handler(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		format := expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...)
		w.Header().Add("Vary", "Accept")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(req) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipWriters.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close()
				gzipWriters.Put(gz)
			}()
			out = gz
		}
		enc := expfmt.NewEncoder(out, format)
		names := req.URL.Query()["name[]"] // promhttp's filter; none: all
		var writeErr error
		write := func(mf *dto.MetricFamily) error {
			if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
				return nil
			}
			writeErr = enc.Encode(mf)
			return writeErr
		}
		for _, c := range r.collectors {
			if err := gather(c, write); writeErr != nil {
				logger.Debug("Writing metrics failed", "err", writeErr) // the scraper went away
				return
			} else if err != nil {
				logger.Error("Gathering metrics failed", "err", err)
			}
		}
		if c, ok := enc.(expfmt.Closer); ok {
			_ = c.Close()
		}
	})
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// acceptsGzip reads Accept-Encoding as promhttp does: gzip unless its q is 0.
func acceptsGzip(req *http.Request) bool {
	for _, h := range req.Header.Values("Accept-Encoding") {
		for _, coding := range strings.Split(h, ",") {
			name, params, _ := strings.Cut(coding, ";")
			if strings.TrimSpace(name) != "gzip" {
				continue
			}
			q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
			if !ok {
				return true
			}
			weight, err := strconv.ParseFloat(q, 64)
			return err == nil && weight > 0
		}
	}
	return false
}
