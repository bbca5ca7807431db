// Imported first by the host: third-party notices stay out of its output. The AWS SDK's Node-version
// notice is about the SDK's future releases; the project pins the SDK, and the README says which Node
// versions it supports.
if (!process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
