package main

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// setup.go brings up everything wrk will drive and signs in, before any
// measurement.

// lineup is what setUp started: the targets, in the order the rounds run
// them, and what the later steps need to reach.
type lineup struct {
	proxy       []*target // the reverse-proxy floor first, then Portcullis
	forwardAuth []*target // the forward-auth floor first, then nginx + Portcullis
	notes       []*target // run once each, reported against their floor
	gateways    []*gateway
	redisGW     *gateway // nil with -skip-redis
	redisAddr   string
	redisSecret string        // the Redis-mode gateway's cookie secret
	bin         string        // the Portcullis binary
	profiles    []profilePair // empty with -profile=false
}

// all is every target of the rounds.
func (l *lineup) all() []*target {
	return append(append([]*target{}, l.proxy...), l.forwardAuth...)
}

// setUp builds Portcullis, starts the upstream, the floors, Redis, the
// demo provider, the gateways and nginx, signs in to each gateway and
// checks every target answers 200 to the request wrk will send.
func (h *harness) setUp(ctx context.Context) (*lineup, error) {
	o, rep := h.opts, h.rep
	l := &lineup{}
	h.logf("building portcullis …")
	bin, err := h.buildPortcullis(ctx)
	if err != nil {
		return nil, err
	}
	l.bin = bin

	// The application and the floors.
	_, upstreamAddr, err := h.startRole("upstream", "upstream")
	if err != nil {
		return nil, err
	}
	upstream := "http://" + upstreamAddr
	floorPProf, err := freeAddr()
	if err != nil {
		return nil, err
	}
	floorProc, floorAddr, err := h.startRole("floor", "floor", "-to", upstream, "-pprof", floorPProf)
	if err != nil {
		return nil, err
	}
	rep.rssOf = append(rep.rssOf, rssProbe{name: "floor: ReverseProxy", proc: floorProc})
	_, bareAddr, err := h.startRole("floor-bare", "floor", "-to", upstream, "-pool=false")
	if err != nil {
		return nil, err
	}

	// The gateways, their provider, and a signed-in session for each.
	// cookie-info is cookie mode at log.level info, for a note; it shares
	// cookie mode's secret, so cookie mode's session is valid there too.
	// Redis first: its port is taken before the gateways pick theirs, so
	// freeAddr cannot hand the same port out twice.
	if !o.skipRedis {
		if _, l.redisAddr, err = h.startRedis(); err != nil {
			return nil, err
		}
	}
	// cookie-profile is cookie mode with the profiler on, for profile.go.
	var profileGW *gateway
	for _, g := range [][3]string{{"cookie", "cookie", "warn"}, {"cookie-info", "cookie", "info"}, {"Redis", "redis", "warn"}, {"cookie-profile", "cookie", "warn"}} {
		if g[1] == "redis" && o.skipRedis || g[0] == "cookie-profile" && !o.profile {
			continue
		}
		gw, err := newGateway(g[0], g[1], g[2])
		if err != nil {
			return nil, err
		}
		switch g[0] {
		case "Redis":
			l.redisGW = gw
		case "cookie-profile":
			if gw.metrics, err = freeAddr(); err != nil {
				return nil, err
			}
			profileGW = gw
		}
		l.gateways = append(l.gateways, gw)
	}
	cookieGW, infoGW := l.gateways[0], l.gateways[1]
	if err := h.startProvider(l.gateways, []demo.User{alice}, time.Hour); err != nil {
		return nil, err
	}
	cookieSecret := randomSecret()
	l.redisSecret = randomSecret()
	for _, g := range l.gateways {
		secret := cookieSecret
		if g.store == "redis" {
			secret = l.redisSecret
		}
		h.logf("starting portcullis-%s …", g.name)
		if err := h.startPortcullis(g, bin, secret, l.redisAddr, upstream); err != nil {
			return nil, err
		}
	}
	signedIn := []*gateway{cookieGW}
	if l.redisGW != nil {
		signedIn = append(signedIn, l.redisGW)
	}
	for _, g := range signedIn {
		if err := h.signIn(ctx, g); err != nil {
			return nil, err
		}
		rep.cookies = append(rep.cookies, cookieSize{g.label, len(g.cookie)})
		rep.rssOf = append(rep.rssOf, rssProbe{name: "Portcullis " + g.label, proc: g.proc})
	}
	infoGW.cookie = cookieGW.cookie
	rep.rssOf = append(rep.rssOf, rssProbe{name: "Portcullis cookie, log.level info", proc: infoGW.proc})

	// The targets. Floors are sent the same Cookie header as cookie mode,
	// so every request wrk writes is the same size.
	floor := &target{name: "floor: ReverseProxy", url: "http://" + floorAddr + "/", cookie: cookieGW.cookie, procs: []*child{floorProc}}
	if g := profileGW; g != nil {
		g.cookie = cookieGW.cookie
		l.profiles = append(l.profiles, profilePair{title: "Reverse proxy",
			floor: profileSide{t: floor, pprof: floorPProf, bin: h.exe},
			gw:    profileSide{t: &target{name: "Portcullis cookie, profiled", url: g.url + "/", cookie: g.cookie, procs: []*child{g.proc}}, pprof: g.metrics, bin: bin}})
	}
	l.proxy = []*target{floor}
	for _, g := range signedIn {
		l.proxy = append(l.proxy, &target{name: "Portcullis " + g.label, url: g.url + "/", cookie: g.cookie, floor: floor, procs: []*child{g.proc}, redis: g.store == "redis"})
	}
	if !o.skipFA {
		block, err := nginxServerBlock(h.root)
		if err != nil {
			return nil, err
		}
		allowPProf, err := freeAddr()
		if err != nil {
			return nil, err
		}
		allowProc, allowAddr, err := h.startRole("allow", "allow", "-pprof", allowPProf)
		if err != nil {
			return nil, err
		}
		nginxAllow, url, err := h.startNginx("nginx-allow", block, allowAddr, upstreamAddr)
		if err != nil {
			return nil, err
		}
		faFloor := &target{name: "floor: nginx + always-200", url: url + "/", cookie: cookieGW.cookie, procs: []*child{nginxAllow, allowProc}}
		l.forwardAuth = []*target{faFloor}
		for _, g := range signedIn {
			nginxProc, url, err := h.startNginx("nginx-"+g.name, block, g.addr, upstreamAddr)
			if err != nil {
				return nil, err
			}
			l.forwardAuth = append(l.forwardAuth, &target{name: "nginx + Portcullis " + g.label, url: url + "/", cookie: g.cookie, floor: faFloor, redis: g.store == "redis",
				procs: []*child{nginxProc, g.proc}})
		}
		if g := profileGW; g != nil {
			nginxProc, url, err := h.startNginx("nginx-"+g.name, block, g.addr, upstreamAddr)
			if err != nil {
				return nil, err
			}
			l.profiles = append(l.profiles, profilePair{title: "Forward-auth behind nginx (the auth service's process only)",
				floor: profileSide{t: faFloor, pprof: allowPProf, bin: h.exe},
				gw:    profileSide{t: &target{name: "nginx + Portcullis cookie, profiled", url: url + "/", cookie: g.cookie, procs: []*child{nginxProc, g.proc}}, pprof: g.metrics, bin: bin}})
		}
	}
	// Two single runs for notes: cookie mode logging every request, and
	// a ReverseProxy without the buffer pool, as the floor would be bare.
	l.notes = []*target{
		{name: "cookie mode at log.level info (a line per request, to a file)", url: infoGW.url + "/", cookie: infoGW.cookie, floor: floor},
		{name: "ReverseProxy without a BufferPool", url: "http://" + bareAddr + "/", cookie: cookieGW.cookie, floor: floor},
	}
	checks := append(l.all(), l.notes...)
	for _, pair := range l.profiles {
		checks = append(checks, pair.gw.t)
	}
	for _, t := range checks {
		if err := check(t); err != nil {
			return nil, err
		}
	}
	rep.proxyTargets, rep.faTargets = l.proxy, l.forwardAuth
	return l, nil
}

// stillRunning records a failure for every gateway that died on the way.
func (h *harness) stillRunning(l *lineup) {
	for _, g := range l.gateways {
		if err := g.proc.alive(); err != nil {
			h.rep.fail("%v", err)
		}
	}
}
