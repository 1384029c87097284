#!/usr/bin/env python3
"""The compose topology (docker-compose.yml) without Docker, on loopback:
redis-server, three `fulcrum serve` with this folder's fulcrum.yaml and
HAProxy with this folder's haproxy.cfg, their addresses rewritten to free
loopback ports. Two fulcrum-mock services register through the
balancer's admin port (its round robin picks the replicas), 300 requests
go through its proxy port, and every replica must report the fleet's call
counts: 150 for each service. Needs redis-server and haproxy (Debian packages) and
a release build:

    cargo build --release -p fulcrum --bin fulcrum -p fulcrum-mock
    deploy/compose/smoke.py [BIN_DIR]
"""
import os, re, resource, socket, tempfile, subprocess, time, json, urllib.request, signal, sys
root=os.path.abspath(os.path.join(os.path.dirname(__file__),"..",".."))
rel=sys.argv[1] if len(sys.argv)>1 else f"{root}/target/release"
work=tempfile.mkdtemp(prefix="fulcrum-compose-"); os.chdir(work)
def port():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
procs=[]
def start(cmd, log):
    p=subprocess.Popen(cmd, stdout=open(log,"w"), stderr=subprocess.STDOUT); procs.append(p); return p
def wait_tcp(port, t=10):
    end=time.time()+t
    while time.time()<end:
        try:
            socket.create_connection(("127.0.0.1",port),timeout=1).close(); return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} not ready")
def wait(port, path="/", t=10):
    end=time.time()+t
    while time.time()<end:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1); return
        except Exception as e:
            time.sleep(0.1)
    raise SystemExit(f"port {port}{path} not ready")
try:
    R=port(); start(["redis-server","--bind","127.0.0.1","--port",str(R),"--save","","--appendonly","no"],"redis.log")
    wait_tcp(R)
    base=open(f"{root}/deploy/compose/fulcrum.yaml").read()
    reps={}
    for name in "abc":
        P,A=port(),port()
        y=base.replace("0.0.0.0:8080",f"127.0.0.1:{P}").replace("0.0.0.0:9090",f"127.0.0.1:{A}").replace("redis://redis:6379",f"redis://127.0.0.1:{R}").replace("/var/lib/fulcrum",f"{work}/{name}")
        os.makedirs(f"{work}/{name}",exist_ok=True)
        open(f"{name}.yaml","w").write(y)
        start([f"{rel}/fulcrum","serve","-c",f"{name}.yaml"],f"{name}.log")
        reps[name]=(P,A)
    for name,(P,A) in reps.items(): wait(A,"/readyz")
    cfg=open(f"{root}/deploy/compose/haproxy.cfg").read()
    FP,FA=port(),port()
    cfg=cfg.replace("bind :8080",f"bind 127.0.0.1:{FP}").replace("bind :9090",f"bind 127.0.0.1:{FA}")
    for name,(P,A) in reps.items():
        cfg=cfg.replace(f"fulcrum-{name}:8080 check port 9090",f"127.0.0.1:{P} check port {A}").replace(f"fulcrum-{name}:9090",f"127.0.0.1:{A}")
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 40100:
        # maxconn 20000 needs ~40,000 open files; containers have them,
        # a host with a lower hard limit does not.
        cfg=cfg.replace("maxconn 20000","maxconn 5000")
    open("haproxy.cfg","w").write(cfg)
    chk=subprocess.run(["haproxy","-c","-f","haproxy.cfg"],capture_output=True,text=True); print("haproxy -c:",chk.returncode,chk.stdout.strip()[-80:],chk.stderr.strip()[-200:])
    if chk.returncode != 0:
        raise SystemExit("haproxy.cfg does not pass haproxy -c")
    start(["haproxy","-f","haproxy.cfg","-db"],"haproxy.log")
    wait(FA,"/readyz")
    time.sleep(2.5)  # HAProxy's first health checks (inter 1s, rise 2)
    mocks=[]
    for i in range(2):
        M=port(); start([f"{rel}/fulcrum-mock","--listen",f"127.0.0.1:{M}","--name",f"m{i}"],f"m{i}.log"); mocks.append(M)
    for M in mocks: wait(M,"/health")
    for i,M in enumerate(mocks):
        body=json.dumps({"service_id":f"svc{i}","name":f"svc{i}","task_types":["yolo"],"endpoint":f"http://127.0.0.1:{M}","version":"1","health_path":"/health"}).encode()
        r=urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{FA}/api/v1/ai_analysis/register",data=body,headers={"content-type":"application/json"}),timeout=3)
        print("register via LB:",r.status)
    time.sleep(1.0)
    codes={}
    for k in range(300):
        try:
            r=urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{FP}/infer/yolo",data=b"{}",headers={"content-type":"application/json"}),timeout=3); c=r.status
        except urllib.error.HTTPError as e: c=e.code
        except Exception as e: c=str(e)[:40]
        codes[c]=codes.get(c,0)+1
    print("300 requests via LB:",codes)
    ok = codes == {200: 300}
    time.sleep(0.5)
    for name,(P,A) in reps.items():
        doc=json.load(urllib.request.urlopen(f"http://127.0.0.1:{A}/api/v1/ai_analysis/services",timeout=3))
        counts={x["service_id"]:x["call_count"] for x in doc.get("services",[])}
        print(f"replica {name}: call counts {counts}")
        ok = ok and counts == {"svc0": 150, "svc1": 150}
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)
finally:
    for p in procs: p.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    for p in procs: p.kill()
