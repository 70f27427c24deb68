//! The gRPC backend of `bench/cases.d/30-grpc.sh`: `bench.Users/GetUser` answering the same
//! data as the bench's `data.json`, over h2c on the address given (`--listen 127.0.0.1:PORT`),
//! on one thread. Built with `cargo build --release -p sluice-integration --bin grpc-bench-backend`.

use serde_json::json;
use sluice_integration::grpc::{GrpcReply, GrpcServer, message, pool};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:18090".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            other => {
                eprintln!("grpc-bench-backend: unknown argument {other} (use --listen ADDR)");
                std::process::exit(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("grpc-bench-backend: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("grpc-bench-backend: cannot listen on {listen}: {e}");
                std::process::exit(1);
            }
        };
        let pool = pool();
        let user = message(
            &pool,
            "bench.User",
            &json!({"id": 123_456, "name": "Elliot Alderson", "email": "elliot@example.com",
                    "active": true, "role": "admin",
                    "address": {"city": "New York", "zip": "10001", "street": "5th Avenue"},
                    "tags": ["a", "b", "c"], "score": 98.5}),
        );
        let _server = GrpcServer::serve_unrecorded(listener, pool, move |_| {
            let user = user.clone();
            async move { GrpcReply::ok(user) }
        });
        eprintln!("grpc-bench-backend: listening on {listen}");
        std::future::pending::<()>().await;
    });
}
