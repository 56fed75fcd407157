//! Every RPC of both services that berth does not serve yet answers `Unimplemented` with a
//! message naming the RPC. When an RPC is built, it moves out of this list into its own test.

use berth_integration::Berthd;
use cri_api::v1;
use tonic::Code;

/// A syntactically valid ID, so that validation passes and the RPC itself answers.
const ID: &str = "4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";

fn assert_unimplemented<T: std::fmt::Debug>(rpc: &str, result: Result<T, tonic::Status>) {
    let status = result.expect_err(rpc);
    assert_eq!(status.code(), Code::Unimplemented, "{rpc}: {status:?}");
    assert_eq!(
        status.message(),
        format!("{rpc} is not implemented by berth yet")
    );
}

macro_rules! check {
    ($client:ident . $method:ident ( $req:expr ) as $rpc:literal) => {
        assert_unimplemented(
            $rpc,
            $client
                .$method($req)
                .await
                .map(|r| r.into_inner())
                .map(|_| ()),
        );
    };
}

#[tokio::test]
async fn unbuilt_runtime_rpcs_answer_unimplemented() {
    let daemon = Berthd::start();
    let mut rt = daemon.runtime().await;
    let sandbox = || ID.to_owned();
    check!(rt.checkpoint_container(v1::CheckpointContainerRequest { container_id: ID.into(), ..Default::default() }) as "CheckpointContainer");
    check!(rt.checkpoint_pod(v1::CheckpointPodRequest { pod_sandbox_id: sandbox(), ..Default::default() }) as "CheckpointPod");
    check!(rt.restore_pod(v1::RestorePodRequest::default()) as "RestorePod");
}
