package main

import "runtime/debug"

// version is the module version the binary was built as, or devel with
// the revision.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	if rev := buildSetting("vcs.revision"); len(rev) >= 12 {
		return "devel-" + rev[:12]
	}
	return "devel"
}

// revision is the VCS revision the binary was built from, if recorded.
func revision() string {
	if rev := buildSetting("vcs.revision"); rev != "" {
		if buildSetting("vcs.modified") == "true" {
			return rev + "-dirty"
		}
		return rev
	}
	return "unknown"
}

func buildSetting(key string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
	}
	return ""
}
