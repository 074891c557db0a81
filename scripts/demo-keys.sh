# The simulator's built-in demo keys (fake; see docs/simulator.md), for
# scripts to source: exported, so that they reach aifleet the way real keys
# do -- in the environment, never on a command line. demo_key_names lists
# them, for passing them on by name (podman run -e NAME).
demo_key_names=(DEMO_ALI_ACCESS_KEY_ID DEMO_ALI_ACCESS_KEY_SECRET DEMO_ALI_STS_ACCESS_KEY_ID
	DEMO_ALI_STS_ACCESS_KEY_SECRET DEMO_ALI_STS_SECURITY_TOKEN DEMO_TC_SECRET_ID
	DEMO_TC_SECRET_KEY)
export DEMO_ALI_ACCESS_KEY_ID=LTAI5tSimDemoAli0000001
export DEMO_ALI_ACCESS_KEY_SECRET=sim-demo-ali-secret-NOT-REAL
export DEMO_ALI_STS_ACCESS_KEY_ID=STS.SimDemoAliSts000001
export DEMO_ALI_STS_ACCESS_KEY_SECRET=sim-demo-sts-secret-NOT-REAL
export DEMO_ALI_STS_SECURITY_TOKEN=sim-demo-sts-token-NOT-REAL
export DEMO_TC_SECRET_ID=AKIDSimDemoTencent000000001
export DEMO_TC_SECRET_KEY=sim-demo-tc-secret-NOT-REAL
