//! The contract of `ProjectionCheckpoints`: what every store of the projectors' positions MUST do,
//! as test cases.

use std::sync::Arc;

use crate::ports::ShardCheckpoint;
use crate::testkit::CheckpointsSubject;

pub async fn feed_checkpoints_start_empty_and_never_move_backwards(subject: CheckpointsSubject) {
    let checkpoints = &subject.checkpoints;
    assert_eq!(
        checkpoints.feed_checkpoint("feed").await.expect("read"),
        None
    );
    checkpoints
        .save_feed_checkpoint("feed", 7)
        .await
        .expect("save");
    assert_eq!(
        checkpoints.feed_checkpoint("feed").await.expect("read"),
        Some(7)
    );
    checkpoints
        .save_feed_checkpoint("feed", 3)
        .await
        .expect("save");
    assert_eq!(
        checkpoints.feed_checkpoint("feed").await.expect("read"),
        Some(7)
    );
    checkpoints
        .save_feed_checkpoint("feed", 9)
        .await
        .expect("save");
    assert_eq!(
        checkpoints.feed_checkpoint("feed").await.expect("read"),
        Some(9)
    );
    assert_eq!(
        checkpoints.feed_checkpoint("other").await.expect("read"),
        None
    );
}

/// Savers racing (a projector and the one taking over from it) leave the highest position, whatever
/// order their writes land in.
pub async fn racing_feed_checkpoint_saves_keep_the_highest(subject: CheckpointsSubject) {
    const SAVERS: u64 = 16;
    let mut saves = tokio::task::JoinSet::new();
    for position in (1..=SAVERS).rev() {
        let checkpoints = Arc::clone(&subject.checkpoints);
        saves.spawn(async move { checkpoints.save_feed_checkpoint("race", position).await });
    }
    while let Some(saved) = saves.join_next().await {
        saved.expect("task").expect("save");
    }
    assert_eq!(
        subject
            .checkpoints
            .feed_checkpoint("race")
            .await
            .expect("read"),
        Some(SAVERS)
    );
}

/// A feed reader and a shard of the same name are different positions.
pub async fn feed_and_shard_checkpoints_are_apart(subject: CheckpointsSubject) {
    let checkpoints = &subject.checkpoints;
    checkpoints
        .save_feed_checkpoint("same", 5)
        .await
        .expect("save");
    assert_eq!(
        checkpoints
            .shard_checkpoint("same", "same")
            .await
            .expect("read"),
        None
    );
    let seen = ShardCheckpoint {
        sequence_number: Some("12".to_owned()),
        finished: true,
    };
    checkpoints
        .save_shard_checkpoint("same", "same", &seen)
        .await
        .expect("save");
    assert_eq!(
        checkpoints.feed_checkpoint("same").await.expect("read"),
        Some(5)
    );
    assert_eq!(
        checkpoints
            .shard_checkpoint("same", "same")
            .await
            .expect("read"),
        Some(seen)
    );
}

pub async fn shard_checkpoints_are_kept_per_stream_and_shard(subject: CheckpointsSubject) {
    let checkpoints = &subject.checkpoints;
    assert_eq!(
        checkpoints
            .shard_checkpoint("stream-a", "shard-1")
            .await
            .expect("read"),
        None
    );
    // Stream sequence numbers are decimal strings longer than any 64-bit integer.
    let far = ShardCheckpoint {
        sequence_number: Some("4900000000000000000000000000000000000001".to_owned()),
        finished: false,
    };
    checkpoints
        .save_shard_checkpoint("stream-a", "shard-1", &far)
        .await
        .expect("save");
    assert_eq!(
        checkpoints
            .shard_checkpoint("stream-a", "shard-1")
            .await
            .expect("read"),
        Some(far.clone())
    );
    let done = ShardCheckpoint {
        sequence_number: Some("4900000000000000000000000000000000000002".to_owned()),
        finished: true,
    };
    checkpoints
        .save_shard_checkpoint("stream-a", "shard-1", &done)
        .await
        .expect("save");
    assert_eq!(
        checkpoints
            .shard_checkpoint("stream-a", "shard-1")
            .await
            .expect("read"),
        Some(done)
    );
    assert_eq!(
        checkpoints
            .shard_checkpoint("stream-a", "shard-2")
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        checkpoints
            .shard_checkpoint("stream-b", "shard-1")
            .await
            .expect("read"),
        None
    );
    let seen = ShardCheckpoint {
        sequence_number: None,
        finished: false,
    };
    checkpoints
        .save_shard_checkpoint("stream-b", "shard-1", &seen)
        .await
        .expect("save");
    assert_eq!(
        checkpoints
            .shard_checkpoint("stream-b", "shard-1")
            .await
            .expect("read"),
        Some(seen)
    );
}
