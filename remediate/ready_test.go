package remediate

import "testing"

// TestJettyVerdict: verdicts come from Jetty's own lines, by logger and
// message from the line's start, never from a war's name inside a line.
func TestJettyVerdict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line       string
		wantReason Reason
		wantReady  bool
	}{
		{"2026-12-03 16:00:00.123:INFO:oejs.Server:main: Started @668ms", "", true},
		{"INFO: Started @12ms", "", true},
		{"2026-12-03 16:00:00.100:INFO:oejsh.ContextHandler:main: Started o.e.j.w.WebAppContext@5c{/,file:///tmp/jetty-0_0_0_0-8080-PAYMENT_FAILED_model_war-_-any-1/webapp/,AVAILABLE}{/m/PAYMENT_FAILED_model.war}", "", false},
		{"FAILED model_war-_-any-1/webapp/,AVAILABLE}{/m/PAYMENT", "", false},
		{"Started @1ms}{/m/x.war}", "", false},
		{"2026-12-03 16:00:00.100:WARN:oejw.WebAppContext:main: Failed startup of context o.e.j.w.WebAppContext@5c{/,null,UNAVAILABLE}{/m/x.war}", ReasonDeployFailed, false},
		{"WARN: Failed startup of context o.e.j.w.WebAppContext: FAILED", ReasonDeployFailed, false},
		{"2026-12-03 16:00:00.100:WARN:oejuc.AbstractLifeCycle:main: FAILED ServerConnector@1{HTTP/1.1,[http/1.1]}{0.0.0.0:8080}: java.io.IOException: Failed to bind to 0.0.0.0/0.0.0.0:8080", ReasonAddressInUse, false},
		{"2026-12-03 16:00:00.100:WARN:oejuc.AbstractLifeCycle:main: FAILED org.eclipse.jetty.server.Server@1: java.lang.IllegalStateException", ReasonFailedLine, false},
		{"Caused by: java.net.BindException: Address already in use", ReasonAddressInUse, false},
		{"INFO:oejsh.ContextHandler:main: deploying /m/java.net.BindException: x.war", "", false},
	} {
		reason, ready := jettyVerdict(tc.line)
		if reason != tc.wantReason || ready != tc.wantReady {
			t.Errorf("%q: %q, %v; want %q, %v", tc.line, reason, ready, tc.wantReason, tc.wantReady)
		}
	}
}
