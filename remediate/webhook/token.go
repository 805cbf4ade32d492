package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTokenPollInterval: Alertmanager rereads its credentials_file at
// every notification, so a rotated token is refused until picked up here.
const DefaultTokenPollInterval = 2 * time.Second

// Token is the bearer token; a request is judged by the one current then.
type Token struct {
	hash atomic.Pointer[[sha256.Size]byte]
}

// NewToken returns a Token holding token.
func NewToken(token []byte) *Token {
	t := &Token{}
	t.set(token)
	return t
}

func (t *Token) set(token []byte) {
	// Comparing hashes takes the same time whatever the tokens' lengths.
	h := sha256.Sum256(token)
	t.hash.Store(&h)
}

func (t *Token) revoke() { t.hash.Store(nil) }

func (t *Token) matches(got string) bool {
	want := t.hash.Load()
	if want == nil {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], want[:]) == 1
}

// ReadTokenFile trims whitespace as Alertmanager does and refuses an empty
// token or a file others may read or write (group-readable is fine), as ssh.
func ReadTokenFile(path string) ([]byte, error) {
	token, _, err := readTokenFile(path)
	return token, err
}

// fileVersion tells one content of a file from the next without reading it.
type fileVersion struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func versionOf(fi fs.FileInfo) fileVersion {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileVersion{size: fi.Size(), mtime: syscall.NsecToTimespec(fi.ModTime().UnixNano())}
	}
	return fileVersion{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

var errExposed = errors.New("readable or writable by others")

// readTokenFile takes the version from the open file, so the two agree;
// O_NONBLOCK keeps a FIFO in the file's place from blocking the open.
func readTokenFile(path string) ([]byte, fileVersion, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("reading bearer token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileVersion{}, fmt.Errorf("reading bearer token: %w", err)
	}
	v := versionOf(fi)
	if !fi.Mode().IsRegular() {
		return nil, v, fmt.Errorf("bearer token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o006 != 0 {
		return nil, v, fmt.Errorf("bearer token file %s is %w (mode %04o): "+
			"run chmod o-rwx on it (0600, or 0640 to share it with Alertmanager's group)", path, errExposed, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, v, fmt.Errorf("reading bearer token: %w", err)
	}
	token := bytes.TrimSpace(b)
	if len(token) == 0 {
		return nil, v, fmt.Errorf("bearer token file %s is empty", path)
	}
	return token, v, nil
}

// TokenFile is a Token reloaded on SIGHUP and on change. A failed reload
// keeps the token, unless the file is exposed: then nothing is accepted.
type TokenFile struct {
	path   string
	token  *Token
	logger *slog.Logger

	mu   sync.Mutex // serialises reloads
	seen fileVersion

	reloads        *prometheus.CounterVec
	lastSuccessful prometheus.Gauge
}

const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

// LoadTokenFile reads path and registers the reload metrics.
func LoadTokenFile(path string, reg prometheus.Registerer, logger *slog.Logger) (*TokenFile, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	token, v, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	f := &TokenFile{path: path, token: NewToken(token), logger: logger, seen: v}
	f.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steam_remediator_token_reloads_total",
		Help: "Reloads of the webhook's bearer token file after it changed or on SIGHUP, by result; a failed reload keeps the previous token, except that a file others can read makes every token refused until it is fixed.",
	}, []string{"result"})
	f.reloads.WithLabelValues(reloadSuccess)
	f.reloads.WithLabelValues(reloadFailure)
	f.lastSuccessful = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "steam_remediator_token_last_reload_successful",
		Help: "Whether the last reload of the webhook's bearer token file succeeded (1) or failed (0).",
	})
	f.lastSuccessful.Set(1)
	if reg != nil {
		for _, c := range []prometheus.Collector{f.reloads, f.lastSuccessful} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("webhook: registering token metrics: %w", err)
			}
		}
	}
	return f, nil
}

func (f *TokenFile) Token() *Token { return f.token }

// Reload reads the file again; trigger says why, for the log.
func (f *TokenFile) Reload(trigger string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload(trigger)
}

func (f *TokenFile) reload(trigger string) error {
	token, v, err := readTokenFile(f.path)
	// Remembered even on failure: a bad file is reported once, not every poll.
	f.seen = v
	if err != nil {
		f.reloads.WithLabelValues(reloadFailure).Inc()
		f.lastSuccessful.Set(0)
		if errors.Is(err, errExposed) {
			f.token.revoke()
			f.logger.Error("Reloading the bearer token failed; refusing every request until the file is fixed",
				"path", f.path, "trigger", trigger, "err", err)
			return err
		}
		f.logger.Error("Reloading the bearer token failed; keeping the previous token", "path", f.path, "trigger", trigger, "err", err)
		return err
	}
	changed := !f.token.matches(string(token))
	f.token.set(token)
	f.reloads.WithLabelValues(reloadSuccess).Inc()
	f.lastSuccessful.Set(1)
	f.logger.Info("Reloaded the bearer token", "path", f.path, "trigger", trigger, "changed", changed)
	return nil
}

// changed sees a file that cannot be stat'ed as the zero version.
func (f *TokenFile) changed() bool {
	var v fileVersion
	if fi, err := os.Stat(f.path); err == nil {
		v = versionOf(fi)
	} else if !errors.Is(err, fs.ErrNotExist) {
		f.logger.Debug("Cannot stat the bearer token file", "path", f.path, "err", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return v != f.seen
}

// Watch polls every interval (DefaultTokenPollInterval if 0) until ctx ends.
func (f *TokenFile) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultTokenPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if f.changed() {
				_ = f.Reload("file changed")
			}
		}
	}
}
