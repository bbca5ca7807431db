// Imported first by scripts/bench/run.ts: the AWS SDK's Node-version notice is noise in bench output.
process.env.AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING ??= '1';
export {};
