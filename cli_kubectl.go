package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Kubernetes client credential plugins: `portcullis token
// --exec-credential URL` as the exec command of a kubeconfig user. The
// shape is client.authentication.k8s.io/v1's ExecCredential (v1beta1 has
// the same fields), written here rather than imported.

const execCredentialV1 = "client.authentication.k8s.io/v1"

// execCredential is what the plugin prints on stdout.
type execCredential struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Status     execCredentialStatus `json:"status"`
}

type execCredentialStatus struct {
	Token               string `json:"token"`
	ExpirationTimestamp string `json:"expirationTimestamp"` // RFC 3339
}

// execInfo is what kubectl passes in KUBERNETES_EXEC_INFO: the version it
// speaks and whether the plugin may interact with the user.
type execInfo struct {
	APIVersion string `json:"apiVersion"`
	Spec       struct {
		Interactive bool `json:"interactive"`
	} `json:"spec"`
}

// kubeExecInfo reads KUBERNETES_EXEC_INFO; nil when kubectl did not set it.
func kubeExecInfo() *execInfo {
	v := os.Getenv("KUBERNETES_EXEC_INFO")
	if v == "" {
		return nil
	}
	var info execInfo
	if json.Unmarshal([]byte(v), &info) != nil {
		return nil
	}
	return &info
}

// execInteractive says whether `token --exec-credential` may run the
// sign-in itself: kubectl says so in spec.interactive (interactiveMode
// IfAvailable gives the plugin the terminal when there is one); run by
// hand, when stderr, where the code is shown, is a terminal.
func execInteractive(stderr io.Writer) bool {
	if info := kubeExecInfo(); info != nil {
		return info.Spec.Interactive
	}
	return isTerminal(stderr)
}

// printExecCredential writes entry as an ExecCredential, in the version
// kubectl asked for when it is v1beta1 (the plugin must answer in the
// version it was given), else v1.
func printExecCredential(stdout, stderr io.Writer, entry *storedToken) int {
	c := execCredential{APIVersion: execCredentialV1, Kind: "ExecCredential", Status: execCredentialStatus{
		Token: entry.AccessToken, ExpirationTimestamp: entry.ExpiresAt.UTC().Format(time.RFC3339),
	}}
	if info := kubeExecInfo(); info != nil && info.APIVersion == "client.authentication.k8s.io/v1beta1" {
		c.APIVersion = info.APIVersion
	}
	b, err := json.Marshal(c)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}
